"""Answers about the data and the approach, each stored with the project: did transfer help and which backbone
is best (``transfer``), and would more labels pay off (``label_budget``).
"""
