"""``python -m mig_labeler`` is the same as the ``mig-labeler`` console script."""

from mig_labeler.entry import main

main()
