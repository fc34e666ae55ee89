"""Per-lesson helpers: each lesson's `check_exercise()` lives in lesson_NN.py."""
