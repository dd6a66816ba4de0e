"""The admin and results API: contests, questions, publishing and read-only results."""
