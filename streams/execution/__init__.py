"""Running candidates' code: language definitions, the local sandbox, Judge0, and the
common interface that grading calls (`create_runner`)."""
