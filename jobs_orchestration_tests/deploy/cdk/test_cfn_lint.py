"""cfn-lint, AWS's CloudFormation linter, finds nothing in the synthesized templates (errors,
warnings and informational findings alike)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
CARELESS_TEMPLATE = {
    "Resources": {
        "Database": {
            "Type": "AWS::RDS::DBInstance",
            "Properties": {"Engine": "postgres", "EngineVersion": "9.6.1", "DBInstanceClass": "db.t4g.small"},
        }
    }
}


def test_cfn_lint_passes_on_both_templates(synthesized, tmp_path):
    existing_vpc = tmp_path / "existing-vpc.template.json"
    existing_vpc.write_text(json.dumps(synthesized.existing_vpc_document))
    # A template cfn-lint must fault, linted in the same run: the check is live, not silently empty.
    careless = tmp_path / "careless.template.json"
    careless.write_text(json.dumps(CARELESS_TEMPLATE))
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--", str(synthesized.path), str(existing_vpc), str(careless)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout, result.stderr
    findings: dict[str, list[str]] = {}
    for finding in json.loads(result.stdout):
        findings.setdefault(Path(finding["Filename"]).name, []).append(
            f"{finding['Rule']['Id']} {finding['Message']} ({finding['Location']['Path']})"
        )
    assert findings.pop(careless.name), "cfn-lint found nothing wrong with an outdated database"
    assert findings == {}, json.dumps(findings, indent=1)
