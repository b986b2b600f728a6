"""The npm-distributed checkers the tests run, installed by the tests themselves into ``.tools/``.

``pip install -e ".[test]" && python -m pytest`` stays the whole setup on a fresh machine: the
first test that needs cfn-guard or asl-validator installs the pinned npm packages once, into the
git-ignored ``.tools/`` folder of the repository. pytest-xdist starts several workers at the same
moment; a file lock lets the first install and the others wait, then find the install done.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"

CFN_GUARD_PACKAGE = "@cdklabs/cdk-validator-cfnguard"
ASL_VALIDATOR_PACKAGE = "asl-validator"
#: Exact versions, so that a new release's new rules cannot fail the suite unannounced.
#: 0.0.62 ships cfn-guard 3.1.1 and AWS Control Tower's proactive-control rules.
NPM_PACKAGES = {CFN_GUARD_PACKAGE: "0.0.62", ASL_VALIDATOR_PACKAGE: "4.0.0"}
#: npm itself may take a while on a slow connection; beyond this something is wrong.
INSTALL_TIMEOUT_SECONDS = 600


class ToolsUnavailable(RuntimeError):
    """The checkers cannot be installed here; the message says why and what to do."""


@dataclass(frozen=True)
class NpmTools:
    cfn_guard: Path
    control_tower_rules: Path
    asl_validator: Path


def package_dir(name: str) -> Path:
    return TOOLS / "node_modules" / name


def installed_version(name: str) -> str | None:
    manifest = package_dir(name) / "package.json"
    if not manifest.is_file():
        return None
    version: str = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    return version


def missing_packages() -> list[str]:
    return [f"{name}@{version}" for name, version in NPM_PACKAGES.items() if installed_version(name) != version]


def _guard_binary() -> Path:
    """The cfn-guard binary the package ships for this machine (the package's own platform names)."""
    systems = {"Linux": "ubuntu", "Darwin": "macos"}
    machines = {"x86_64": "x86_64", "AMD64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
    system, machine = platform.system(), platform.machine()
    if system not in systems or machine not in machines:
        raise ToolsUnavailable(f"{CFN_GUARD_PACKAGE} ships cfn-guard for Linux and macOS on x86_64 or arm64 only")
    return package_dir(CFN_GUARD_PACKAGE) / "bin" / systems[system] / machines[machine] / "cfn-guard"


def _npm_install(packages: list[str]) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ToolsUnavailable(
            "npm is not installed: the guard-rail and state-machine tests install "
            f"{', '.join(packages)} with it. Install Node.js 18 or newer with npm "
            "(Debian/Ubuntu: apt-get install nodejs npm) and run the tests again."
        )
    TOOLS.mkdir(exist_ok=True)
    # --omit=peer: the cfn-guard package names aws-cdk-lib as a peer for its CDK plugin, which the
    # tests do not use (they run its binary and rules); npm would otherwise fetch all of the CDK.
    command = [
        npm,
        "install",
        "--prefix",
        str(TOOLS),
        "--omit=peer",
        "--no-audit",
        "--no-fund",
        "--save-exact",
        *packages,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise ToolsUnavailable(f"`{' '.join(command)}` took more than {INSTALL_TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        raise ToolsUnavailable(f"`{' '.join(command)}` failed (exit {result.returncode}):\n{result.stderr[-3000:]}")


def install() -> NpmTools:
    """Install the pinned packages into ``.tools/`` unless they are already there; safe in parallel."""
    TOOLS.mkdir(exist_ok=True)
    with FileLock(str(TOOLS / "install.lock")):
        missing = missing_packages()
        if missing:
            _npm_install(missing)
            still_missing = missing_packages()
            if still_missing:
                raise ToolsUnavailable(f"npm reported success but {still_missing} are not in {TOOLS}")
    tools = NpmTools(
        cfn_guard=_guard_binary(),
        control_tower_rules=package_dir(CFN_GUARD_PACKAGE) / "rules" / "control-tower" / "cfn-guard",
        asl_validator=TOOLS / "node_modules" / ".bin" / "asl-validator",
    )
    for path in (tools.cfn_guard, tools.control_tower_rules, tools.asl_validator):
        if not path.exists():
            raise ToolsUnavailable(f"{path} is missing from the installed packages")
    return tools
