"""Regenerate the binary files of the sample knowledge base (PDF, DOCX) from the text below.

Run once by a developer (`python scripts/make_sample_kb.py`); the outputs are committed so
that nothing is generated or downloaded when the notebooks run.
"""

from pathlib import Path

import docx
from fpdf import FPDF

OUT = Path(__file__).resolve().parents[1] / "dskit" / "data" / "sample_kb"

GARDEN = [
    ("Growing tomatoes on a balcony",
     "Tomatoes need at least six hours of direct sun a day. On a balcony, grow them in pots of "
     "at least 20 litres with drainage holes, and choose compact bush varieties such as "
     "'Tiny Tim' or cherry tomatoes. Sow the seeds indoors six to eight weeks before the last "
     "frost, and move the seedlings outside when night temperatures stay above 10 degrees C."),
    ("Watering and feeding",
     "Water deeply in the morning, at the base of the plant, never on the leaves: wet leaves "
     "invite blight. A pot on a sunny balcony may need water every day in July. Once the first "
     "flowers appear, feed every two weeks with a fertiliser rich in potassium (a tomato feed). "
     "Irregular watering causes blossom end rot, a black patch at the bottom of the fruit."),
    ("Harvest and pests",
     "Pick the fruit when it is fully coloured and slightly soft. Aphids can be washed off with "
     "a jet of water; yellow leaves at the bottom of the plant are normal late in the season. "
     "Basil planted next to tomatoes is said to keep whiteflies away."),
]

MEETING = [
    "项目周会纪要（2026 年 11 月 20 日）",
    "参会人员：王芳、李雷、陈静。",
    "一、知识库功能：李雷负责中文检索测试，下周五之前完成。",
    "二、部署：GPU 服务器的显卡升级推迟到十二月，期间继续使用 7b 模型。",
    "三、预算：本季度云服务费用上限为三万元，陈静每月汇报一次实际花费。",
    "下次会议时间：11 月 27 日下午三点。",
]


def make_pdf() -> None:
    pdf = FPDF()
    pdf.set_title("Balcony garden guide")
    for title, body in GARDEN:  # one section per page: page numbers become citations
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.multi_cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 7, body, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(OUT / "balcony_garden.pdf"))


def make_docx() -> None:
    document = docx.Document()
    for line in MEETING:
        document.add_paragraph(line)
    document.core_properties.title = "项目周会纪要"
    document.save(str(OUT / "会议纪要.docx"))


if __name__ == "__main__":
    make_pdf()
    make_docx()
    print(f"wrote {OUT}")
