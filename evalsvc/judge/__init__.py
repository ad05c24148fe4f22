"""The judge of a run: serving setup, rubric choice, juries, calibration slices and the Ray Data judge stage."""
