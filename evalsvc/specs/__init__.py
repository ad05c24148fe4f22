"""The versioned judge and guard files under judges/ (rubrics, guard formats) and their strict answer parsers.

Pure: no Ray, no engines; the plan, the judge and the guard all read them from here.
"""
