import os

# Before anything imports Qt: the tests run headless.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_configure(config):
    # Logs and settings of the app go to Qt's test locations, not the user's.
    from PySide6.QtCore import QStandardPaths

    QStandardPaths.setTestModeEnabled(True)
