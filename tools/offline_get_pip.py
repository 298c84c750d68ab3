"""Stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test bootstraps pip in each sanity virtual environment with a script it fetches from
its own file host. Where that host is unreachable (an offline CI machine that can still reach
PyPI), this script does the same job from a pip wheel downloaded from PyPI beforehand.
tools/bootstrap.sh installs it as ~/.ansible/test/cache/get_pip_<version>.py next to the wheel.
"""

import glob
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = os.path.splitext(os.path.basename(__file__))[0].replace("get_pip_", "").replace("_", ".")


def main():
    wheels = glob.glob(os.path.join(HERE, "pip-%s-*.whl" % VERSION))
    if not wheels:
        sys.exit("no pip %s wheel in %s: run tools/bootstrap.sh" % (VERSION, HERE))
    wheel = wheels[0]
    args = []
    for arg in sys.argv[1:]:
        if arg in ("--no-setuptools", "--no-wheel"):
            continue  # get-pip.py options that pip install itself does not know
        args.append(wheel if arg == "pip==%s" % VERSION else arg)
    sys.path.insert(0, wheel)
    sys.argv = ["pip", "install"] + args
    runpy.run_module("pip", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
