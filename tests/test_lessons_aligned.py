"""English and Spanish lessons stay aligned: same cells, same code, same checked outputs."""
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
EN = sorted((ROOT / "notebooks" / "en").glob("[0-9][0-9]-*.ipynb"))
ES = sorted((ROOT / "notebooks" / "es").glob("[0-9][0-9]-*.ipynb"))
MAX_IGNORED_PER_LESSON = 2


def _by_number(paths):
    return {p.name[:2]: p for p in paths}


def _sanitize(text: str) -> str:
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "notebooks" / "sanitize.cfg")
    for section in cfg.sections():
        text = re.sub(cfg[section]["regex"], cfg[section]["replace"], text)
    return text


def _outputs(cell):
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            out.append((o["name"], _sanitize(o["text"])))
        elif "data" in o:
            out.append((o["output_type"], _sanitize(o["data"].get("text/plain", ""))))
        elif o["output_type"] == "error":
            out.append(("error", o["ename"]))
    # nbval joins consecutive stream pieces; so do we
    merged = []
    for kind, text in out:
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


def test_every_lesson_exists_in_both_languages():
    assert EN, "no lessons in notebooks/en"
    assert sorted(_by_number(EN)) == sorted(_by_number(ES))


@pytest.mark.parametrize("number", sorted(_by_number(EN)))
def test_same_cells_code_and_outputs(number):
    en = nbformat.read(_by_number(EN)[number], as_version=4)
    es = nbformat.read(_by_number(ES)[number], as_version=4)
    assert [c.cell_type for c in en.cells] == [c.cell_type for c in es.cells], \
        "the two lessons must have the same cells in the same order"
    for i, (a, b) in enumerate(zip(en.cells, es.cells)):
        if a.cell_type != "code":
            continue
        assert a.source == b.source, f"code cell {i} differs"
        assert _outputs(a) == _outputs(b), f"stored outputs of code cell {i} differ"


@pytest.mark.parametrize("path", EN + ES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_outputs_are_stored_and_ignores_are_rare(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code if c.source.strip()), \
        "run the lesson top to bottom and save it with its outputs"
    ignored = [c for c in code if "NBVAL_IGNORE_OUTPUT" in c.source
               or "nbval-ignore-output" in c.get("metadata", {}).get("tags", [])]
    assert len(ignored) <= MAX_IGNORED_PER_LESSON
