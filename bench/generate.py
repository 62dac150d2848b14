"""Generates large but valid projects for the benchmarks: one long flow and many entities."""
from __future__ import annotations

from pathlib import Path


def entities_source(count: int) -> str:
    parts = []
    for i in range(count):
        ref = f"    owner: ref Entity{i - 1}\n" if i else ""
        parts.append(
            f'entity Entity{i} "实体{i}" {{\n'
            f'    name: text required max 40 label "名称"\n'
            f"    phone: phone unique\n"
            f"    tier: enum(platinum, gold, star, general) default general\n"
            f"    amount: money range 0..1000000 default 0\n"
            f"    opened: date\n{ref}"
            f"}}\n\n"
            f"form form{i} for Entity{i} {{\n"
            f'    section "基本" {{\n        name\n        phone\n        tier readonly\n    }}\n'
            f'    section "金额" when tier == gold {{\n        amount\n    }}\n'
            f"}}\n\n"
            f"list list{i} for Entity{i} {{\n    columns name, phone, tier\n    filters tier\n    sort name asc\n}}\n"
        )
    return "\n".join(parts)


def flow_source(steps: int) -> str:
    """A flow of about `steps` steps: a chain of sections, each a menu whose options do some work."""
    lines = ["queue general {\n    strategy longest_idle\n}\n", "flow big {", "    entry number \"4000000000\"",
             "    var count: number = 0", "    answer", "    lookup customer = Entity0 where phone == caller"]
    sections = max(steps // 8, 1)
    for i in range(sections):
        following = f"section{i + 1}" if i + 1 < sections else "finish"
        lines += [
            f"    section{i}: menu {{",
            f'        prompt "第{i}节:请按1或2"',
            f"        1 \"继续\" -> part{i}",
            f"        2 {{",
            f'            say "您选择了2"',
            f"            set count = count + 1",
            f"            goto {following}",
            f"        }}",
            f"        on timeout {{ repeat }}",
            f"        on invalid {{ repeat }}",
            f"        on failure -> finish",
            f"    }}",
            f"    part{i}: if count > {i} and customer.tier in [platinum, gold] {{",
            f'        say "您好 {{customer.name}},第{i}节"',
            f"    }} else {{",
            f"        set count = count + 2",
            f"    }}",
            f"    goto {following}",
        ]
    lines += ["    finish: enqueue general", "}"]
    return "\n".join(lines) + "\n"


def write_project(folder: Path, steps: int = 5000, entities: int = 200) -> Path:
    (folder / "flows").mkdir(parents=True, exist_ok=True)
    (folder / "schemas").mkdir(parents=True, exist_ok=True)
    (folder / "schemas" / "entities.schema").write_text(entities_source(entities), encoding="utf-8")
    (folder / "flows" / "big.flow").write_text('import "../schemas/entities.schema"\n\n' + flow_source(steps),
                                               encoding="utf-8")
    return folder
