"""Small unit conversions used in the kitchen and on trips."""


def celsius_to_fahrenheit(celsius: float) -> float:
    """Convert a temperature: water boils at 100 °C, which is 212 °F."""
    return celsius * 9 / 5 + 32


def cups_to_grams_flour(cups: float) -> float:
    """One US cup of bread flour weighs about 120 grams."""
    return cups * 120.0


def km_to_miles(km: float) -> float:
    """One kilometre is 0.621371 miles; a marathon is 42.195 km."""
    return km * 0.621371
