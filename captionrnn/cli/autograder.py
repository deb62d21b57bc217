"""``captionrnn autograder OUT.zip``: the zip Gradescope's "Configure Autograder" page takes.

    captionrnn autograder autograder.zip

Gradescope unpacks it in /autograder/source, runs ``setup.sh`` once to build the image, then
``run_autograder`` for every submission. The zip holds the reference ``captionrnn`` package (with
the grader); ``run_autograder`` makes it readable by root only before grading, and the student's
code runs as another user that cannot reach it. See docs/grading.md.
"""

import sys


def _run(args):
    from captionrnn.grading.gradescope_zip import build

    try:
        info = build(args.out)
    except (OSError, ValueError) as exc:
        print(f"captionrnn autograder: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({info['files']} files, reference captionrnn {info['version']})")
    print("upload it on Gradescope: Configure Autograder -> Zip file upload")
    return 0


def register(subparsers):
    p = subparsers.add_parser(
        "autograder",
        help="build the autograder.zip Gradescope takes (setup.sh, run_autograder, the reference)",
        description="Write the zip to upload on Gradescope's Configure Autograder page: setup.sh "
        "and run_autograder at its root and this reference captionrnn package, which "
        "run_autograder makes readable by root only. See docs/grading.md.",
    )
    p.add_argument("out", metavar="OUT.zip", help="the zip to write")
    p.set_defaults(func=_run)
