"""Course tooling: make the student edition (:mod:`.release`) and grade submissions
(:mod:`.grader`).

Neither module is imported by the library itself; the ``captionrnn release`` and ``captionrnn
grade`` commands load them on demand. See docs/grading.md and docs/instructors.md.
"""
