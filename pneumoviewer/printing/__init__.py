"""Report pages painted with QtGui (QPainter on QPdfWriter or QImage): no widgets, no window.

Imported by the app (Review → Save case report…) and by `pneumoviewer report`, which starts a
QGuiApplication offscreen; what the pages say comes from the Qt-free `pneumoviewer.reports`.
"""
