"""`rbridge predict evaluate --group-by`: a group too small to fit is skipped, named; the rest kept.

Pythia 160m LAMBADA perplexity -> 12b ARC-Challenge accuracy per checkpoint, standard and
deduplicated Pile as two groups, plus a one-point group ('solo': 410m -> 6.9b at step 143000).
The transfer numbers are recomputed here with numpy's polyfit to 1e-9.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictors.cli import main


def test_a_one_point_group_is_skipped_and_named(pythia, tmp_path, capsys):
    lines = ["path,role,key,group"]
    data = {}
    for variant, suffix in (("standard", ""), ("deduped", "-deduped")):
        xs, ys = [], []
        for path in sorted((pythia / f"pythia-160m{suffix}" / "zero-shot").glob("*.json")):
            step = path.stem.split("_")[-1]
            target = pythia / f"pythia-12b{suffix}" / "zero-shot" / f"12b{suffix}_{step}.json"
            lines += [f"{path},proxy,{variant}-{step},{variant}"]
            lines += [f"{target},target,{variant}-{step},{variant}"]
            xs.append(json.loads(path.read_text())["results"]["lambada_openai"]["ppl"])
            ys.append(json.loads(target.read_text())["results"]["arc_challenge"]["acc"])
        data[variant] = (np.array(xs), np.array(ys))
    lines.append(f"{pythia}/pythia-410m/zero-shot/410m_step143000.json,proxy,solo-1,solo")
    lines.append(f"{pythia}/pythia-6.9b/zero-shot/6.9b_step143000.json,target,solo-1,solo")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    code = main(
        [
            "evaluate",
            "--manifest",
            str(manifest),
            "--proxy-task",
            "lambada_openai",
            "--proxy-metric",
            "ppl",
            "--target-task",
            "arc_challenge",
            "--target-metric",
            "acc",
            "--form",
            "logarithmic",
            "--n-boot",
            "50",
            "--quiet",
            "--json",
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert payload["join"]["n_pairs"] == len(data["standard"][0]) + len(data["deduped"][0]) + 1
    assert [(s["group"], s["n"]) for s in payload["skipped_groups"]] == [("solo", 1)]
    assert any("'solo'" in note and "skipped" in note for note in payload["notes"])
    assert payload["cv_points"] and "extrapolation" in payload  # every other result kept
    assert {g["group"] for g in payload["leave_one_group_out"]["groups"]} == {"standard", "deduped"}
    assert len(payload["transfer"]) == 2
    for row in payload["transfer"]:
        (xa, ya), (xb, yb) = data[row["fit_on"]], data[row["test_on"]]
        b, a = np.polyfit(np.log(xa), ya, 1)
        assert row["mae"] == pytest.approx(np.mean(np.abs(yb - (a + b * np.log(xb)))), rel=1e-9)
