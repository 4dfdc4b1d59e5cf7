"""Copy the public pages the bench/retrieval_sets questions are about into a corpus folder.

    .venv/bin/python bench/retrieval_sets/make_corpus.py /tmp/public/knowledge
    KNOWLEDGE_CORPUS_DIR=/tmp/public/knowledge KNOWLEDGE_DATA_DIR=/tmp/public-data \\
        .venv/bin/knowledge build --namespace knowledge:pydoc --namespace knowledge:debianfr \\
            --namespace knowledge:debianref

Needs Debian's python3.11-doc, debian-handbook and debian-reference-fr packages. The handbook's user-group-databases
page shows an example password, so knowledge:debianfr fails no_secrets and is never promoted:
score it with ``bench/retrieval_eval.py --newest``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PAGES = {
    "pydoc": (Path("/usr/share/doc/python3.11/html/library"),
              ["pathlib", "json", "csv", "shutil", "functools", "zipfile", "venv", "subprocess"]),
    "debianfr": (Path("/usr/share/doc/debian-handbook/html/fr-FR"),
                 ["sect.apt-get", "sect.apt-cache", "sect.automatic-upgrades", "sect.backup",
                  "sect.config-bootloader", "sect.asynchronous-task-scheduling-anacron",
                  "sect.task-scheduling-cron-atd", "sect.quotas", "sect.user-group-databases", "sect.remote-login",
                  "sect.syslog", "sect.network-config", "sect.firewall-packet-filtering"]),
    # debian-reference-fr's chapters are ``chNN.fr.html``: copied as ``chNN.html`` (doc id knowledge.debianref.chNN).
    "debianref": (Path("/usr/share/debian-reference"), ["ch03", "ch04", "ch05", "ch06", "ch08", "ch10"]),
}


def main(target: Path) -> None:
    for domain, (source, pages) in PAGES.items():
        (target / domain).mkdir(parents=True, exist_ok=True)
        for page in pages:
            found = source / f"{page}.html"
            shutil.copy(found if found.exists() else source / f"{page}.fr.html", target / domain / f"{page}.html")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
