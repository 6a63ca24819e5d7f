"""The trusted grading runner: each submission in an OS sandbox, the verdict decided outside it."""
