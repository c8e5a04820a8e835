"""The user's project: the ``project.json`` schema with migration and atomic save (``project_file``) and job
bundles that train the same project on a GPU server (``jobs``).
"""
