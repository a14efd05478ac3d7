"""What people read instead of tables: case reports, evaluation and dataset-statistics reports.

Qt-free (numpy; matplotlib only inside the functions that draw a file's plots). The pages of a
case report are painted with QtGui in `pneumoviewer.printing`.
"""
