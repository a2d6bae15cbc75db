"""taskboard: a small application on storelayer (projects, tasks, comments)."""
