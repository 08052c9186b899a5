"""Mechscope's window: Qt + pyqtgraph. Never imports torch; talks to ``core.session``."""
