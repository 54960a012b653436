"""One report version as one email: the report's HTML is the body (a plain-text part gives its
title and facts), the CSV and XLSX are attached, or linked to their archived copies. The subject
and every word come from the report itself, so a recipient reads them in their own language."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape

from pagorecon_dagster.delivery.archive import FOLDER, Version

ATTACHED = ("csv", "xlsx")
MIME = {"csv": ("text", "csv"), "xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
SUBJECT_PREFIX = "pagorecon: "
# Headers a machine (and the tests) read back: which report and which version this message carries.
REPORT_HEADER, VERSION_HEADER = "X-Pagorecon-Report", "X-Pagorecon-Version"


def links(version: Version, base_url: str) -> dict[str, str]:
    """format -> URL of the archived file: `base_url` + its path under archive/reports/."""
    return {fmt: f"{base_url.rstrip('/')}/{FOLDER}/{version.base}.{fmt}"
            for fmt in ATTACHED}


def build_message(version: Version, *, sender: str, recipient: str, files: str, base_url: str = "") -> EmailMessage:
    report = version.report
    message = EmailMessage()
    message["Subject"] = SUBJECT_PREFIX + report.title
    message["From"], message["To"] = sender, recipient
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message[REPORT_HEADER], message[VERSION_HEADER] = report.path, version.sha256
    text = [report.title, "", *(f"{name}: {value}" for name, value in report.facts)]
    html = version.content("html").decode("utf-8")
    if files == "link":
        urls = links(version, base_url)
        text += ["", *urls.values()]
        items = "".join(f'<li><a href="{escape(url)}">{escape(url.rpartition("/")[2])}</a></li>' for url in urls.values())
        html = html.replace("\n<footer>", f"\n<ul class=\"files\">{items}</ul>\n<footer>", 1)
    message.set_content("\n".join(text) + "\n")
    message.add_alternative(html, subtype="html")
    if files == "attach":
        name = report.path.rpartition("/")[2]
        for fmt in ATTACHED:
            maintype, subtype = MIME[fmt]
            # bytes, base64: the archived file exactly (the CSV keeps its BOM and CRLF for Excel)
            message.add_attachment(version.content(fmt), maintype=maintype, subtype=subtype, filename=f"{name}.{fmt}",
                                   params={"charset": "utf-8"} if maintype == "text" else None)
    # last: making the message multipart moves the Content-* headers set before into its first part
    message["Content-Language"] = report.language
    return message
