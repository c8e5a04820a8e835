"""The main window: a sidebar of steps, the project menu, the status bar. No ML logic here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from tl_desktop import __version__, paths
from tl_desktop.core.errors import ProjectError
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.project_dialogs import NewProjectDialog, ProjectsFolderDialog
from tl_desktop.ui.session import Session
from tl_desktop.ui.settings import app_settings, projects_folder, projects_folder_chosen, recent_projects
from tl_desktop.ui.welcome import WelcomeView
from tl_desktop.ui.widgets.common import icon
from tl_desktop.ui.widgets.errors import show_error
from tl_desktop.ui.widgets.files import open_file
from tl_desktop.workers import Worker, tasks

log = logging.getLogger(__name__)

WARM_UP_DELAY_MS = 1500

# (key, sidebar text, icon, needs an open project)
STEPS = [
    ("start", "Start", "app", False),
    ("data", "1  Data", "data", True),
    ("label", "     Label", "label", True),  # shown while the project has labels given in the app
    ("model", "2  Model", "model", True),
    ("train", "3  Train", "train", True),
    ("evaluate", "4  Evaluate", "evaluate", True),
    ("export", "5  Export", "export", True),
    ("predict", "6  Predict", "predict", False),
]


def step_shortcut(key: str) -> str:
    """Ctrl+0 ... Ctrl+6 as the steps are numbered (the Label step below Data: Ctrl+L)."""
    numbered = [k for k, *_rest in STEPS if k != "label"]
    return "Ctrl+L" if key == "label" else f"Ctrl+{numbered.index(key)}"


class MainWindow(QMainWindow):
    def __init__(self, log_file: Path | None = None, *, warm_up: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.log_file = log_file or paths.log_dir() / "tl-desktop.log"
        self.session = Session(self)
        self.sample_worker: Worker | None = None
        self._close_when_stopped = False
        self._pending_switch: Callable[[], None] | None = None  # a project switch waiting for training to stop
        self.setWindowTitle("tl-desktop")
        self.views: dict[str, QWidget] = self._make_views()
        self._build_central()
        self._build_menus()
        self.session.project_changed.connect(self._on_project)
        self.session.labels_changed.connect(self._show_label_step)
        self.session.labelling_requested.connect(lambda: self._show_label_step() or self.show_step("label"))
        self.session.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.session.saved.connect(lambda f: self.statusBar().showMessage(f"Saved {f}", 3000))
        self._on_project(None)
        self._restore_geometry()
        self.statusBar().showMessage("Ready. Open the sample project or create your own.")
        # Load the engine (torch) in the background shortly after the window appears, so Start is instant
        # and the one-off import never happens while a model trains.
        self.warm_up_timer = QTimer(self, singleShot=True, interval=WARM_UP_DELAY_MS)
        self.warm_up_timer.timeout.connect(self.views["train"].form.query_devices)
        if warm_up:
            self.warm_up_timer.start()

    # --- construction -------------------------------------------------------------------------------
    def _make_views(self) -> dict[str, QWidget]:
        from tl_desktop.ui.data.view import DataView
        from tl_desktop.ui.evaluate.view import EvaluateView
        from tl_desktop.ui.export_view import ExportView
        from tl_desktop.ui.label.view import LabelView
        from tl_desktop.ui.model_view import ModelView
        from tl_desktop.ui.predict_view import PredictView
        from tl_desktop.ui.train.view import TrainView

        welcome = WelcomeView()
        welcome.new_requested.connect(self.new_project)
        welcome.open_requested.connect(self.open_project)
        welcome.sample_requested.connect(self.open_sample)
        welcome.recent_requested.connect(self.open_path)
        self.welcome = welcome
        train = TrainView(self.session)
        train.evaluation_requested.connect(lambda: self.show_step("evaluate"))  # after the final curves
        return {"start": welcome, "data": DataView(self.session), "label": LabelView(self.session),
                "model": ModelView(self.session), "train": train,
                "evaluate": EvaluateView(self.session), "export": ExportView(self.session),
                "predict": PredictView(self.session)}

    def _build_central(self) -> None:
        self.steps = QListWidget(objectName="stepList")
        self.steps.setIconSize(QSize(22, 22))
        self.steps.setSpacing(4)
        self.steps.setFixedWidth(170)
        self.stack = QStackedWidget()
        for key, text, icon_name, _needs in STEPS:
            item = QListWidgetItem(icon(icon_name), text)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setToolTip(f"{text.strip(' 0123456789')} ({step_shortcut(key)})")
            self.steps.addItem(item)
            self.stack.addWidget(self.views[key])
        self.steps.currentRowChanged.connect(self.stack.setCurrentIndex)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.steps)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.steps.setCurrentRow(0)

    def _action(self, text: str, slot, shortcut: QKeySequence | str | None = None, icon_name: str | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        file.addAction(self._action("&New project…", self.new_project, QKeySequence.StandardKey.New, "new",
                                    "Start a project for your own images"))
        file.addAction(self._action("&Open project…", self.open_project, QKeySequence.StandardKey.Open, "open",
                                    "Open a project folder"))
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addAction(self._action("Open the &sample project", self.open_sample, None, "sample",
                                    "Handwritten digits: try every step in a minute"))
        file.addSeparator()
        self.save_action = self._action("&Save", self.session.save, QKeySequence.StandardKey.Save, "save",
                                        "Save the project now (it is also saved automatically)")
        file.addAction(self.save_action)
        file.addSeparator()
        train = self.views["train"]
        self.server_action = self._action("Train on a ser&ver…", train.server.create_job, None, None,
                                          "Write a job folder to train this project on a GPU server (torchrun)")
        self.import_action = self._action("&Import server run…", train.server.choose_job, None, None,
                                          "Bring a finished server job back into the project")
        file.addAction(self.server_action)
        file.addAction(self.import_action)
        file.addSeparator()
        settings_action = self._action("Se&ttings…", self.show_settings, QKeySequence.StandardKey.Preferences,
                                       None, "Projects folder, default device, cache, light or dark theme")
        settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        file.addAction(settings_action)
        file.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))
        steps = self.menuBar().addMenu("&Steps")
        for key, text, icon_name, _needs in STEPS:
            steps.addAction(self._action(text.strip(" 0123456789"), lambda _c=False, k=key: self.show_step(k),
                                         step_shortcut(key), icon_name))
        tools = self.menuBar().addMenu("&Tools")
        tools.addAction(self._action("Did transfer &help?…", self.show_transfer_window, "Ctrl+T", "train",
                                     "Did the pretrained model help, which model, would more labels pay off?"))
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("&Glossary", self.show_glossary, "F1",
                                         None, "What the words on screen mean (F1: the word in focus)"))
        help_menu.addAction(self._action("Guided &tour", self.show_tour, None, None, "The steps, one by one"))
        help_menu.addSeparator()
        help_menu.addAction(self._action("Show the &log file", self.show_log))
        help_menu.addAction(self._action("&About tl-desktop", self.about))

    def show_transfer_window(self) -> None:
        """Open (or raise) the non-modal "Did transfer help?" window on the open project's images (with no project
        open, on a folder or CSV chosen in the window)."""
        from tl_desktop.ui.transfer.window import TransferWindow

        window = getattr(self, "transfer_window", None)
        if window is None or window.project is not self.session.project and not window.is_running():
            window = self.transfer_window = TransferWindow(self.session.project, self)
        window.show()
        window.raise_()
        window.activateWindow()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in recent_projects():
            self.recent_menu.addAction(str(folder), lambda f=str(folder): self.open_path(f))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    # --- steps --------------------------------------------------------------------------------------
    def show_step(self, key: str) -> None:
        row = [s[0] for s in STEPS].index(key)
        item = self.steps.item(row)
        if item.flags() & Qt.ItemFlag.ItemIsEnabled and not item.isHidden():
            self.steps.setCurrentRow(row)

    def _on_project(self, project: proj.Project | None) -> None:
        for row, (key, text, _icon, needs) in enumerate(STEPS):
            item = self.steps.item(row)
            flags = item.flags()
            enabled = not needs or project is not None
            item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled if enabled else flags & ~Qt.ItemFlag.ItemIsEnabled)
            name = text.strip(" 0123456789")
            item.setToolTip(f"{name} ({step_shortcut(key)})" if enabled else
                            f"{name}: create or open a project first (File > New project… or the Start page)")
        for action in (self.save_action, self.server_action, self.import_action):
            action.setEnabled(project is not None)
        self._show_label_step()
        self.setWindowTitle(f"{project.name} — tl-desktop" if project else "tl-desktop")
        self.welcome.refresh()
        if project is not None:
            self.statusBar().showMessage(f"Opened {project.folder}", 5000)
            self.show_step("data")

    def _show_label_step(self) -> None:
        """The Label step is in the sidebar while the open project has labels given in the app."""
        project = self.session.project
        self.steps.item([s[0] for s in STEPS].index("label")).setHidden(project is None or project.labels is None)

    # --- project actions ----------------------------------------------------------------------------
    def _switch(self, open_it: Callable[[], None]) -> None:
        """Switch the project by calling ``open_it`` (every step resets on ``Session.project_changed``). While a
        model trains, ask first; on yes, stop training and switch once it has stopped (as closing does)."""
        train = self.views["train"]
        if not train.is_training():
            open_it()
            return
        name = self.session.project.name if self.session.project else ""
        answer = QMessageBox.question(
            self, "Training is running", f"Training is running in project {name}: stop it and switch?\n\n"
            "The epochs finished so far are kept; you can continue the run later.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        if self._pending_switch is None:
            train.run_ended.connect(self._switch_when_stopped)
        self._pending_switch = open_it
        train.stop()
        self.statusBar().showMessage("Stopping training… the other project opens when the current step ends.")

    def _switch_when_stopped(self) -> None:
        self.views["train"].run_ended.disconnect(self._switch_when_stopped)
        open_it, self._pending_switch = self._pending_switch, None
        if open_it is not None:
            open_it()

    def first_start(self) -> ProjectsFolderDialog | None:
        """On the first start (no projects folder chosen yet), ask where projects go: the dialog (shown, not
        blocking) proposes ``settings.projects_folder()``; OK stores it. None when already chosen."""
        if projects_folder_chosen():
            return None
        self.projects_folder_dialog = ProjectsFolderDialog(projects_folder(), self)
        self.projects_folder_dialog.accepted.connect(self.welcome.refresh)
        self.projects_folder_dialog.open()
        return self.projects_folder_dialog

    def new_project(self) -> NewProjectDialog:
        """Ask the project's name and folder (default: the projects folder; an empty name is refused in the
        dialog), then create and open it. Returns the dialog (shown, not blocking)."""
        dialog = self.new_project_dialog = NewProjectDialog(projects_folder(), self)
        dialog.accepted.connect(lambda: self._create_from(dialog))
        dialog.open()
        return dialog

    def _create_from(self, dialog: NewProjectDialog) -> None:
        target, name = dialog.target(), dialog.project_name()
        self._switch(lambda: self._create(target, name))

    def _create(self, target: Path, name: str) -> None:
        try:
            self.session.create(target, name)
        except (ProjectError, OSError) as exc:
            show_error(self, "Could not create the project", str(exc), "Choose another folder or name.")

    def open_project(self) -> None:
        start = projects_folder() if projects_folder().is_dir() else Path.home()
        folder = QFileDialog.getExistingDirectory(self, "Open a project folder", str(start))
        if folder:
            self.open_path(folder)

    def open_path(self, path: str) -> None:
        """Open the project in ``path`` (asks first while a model trains)."""
        self._switch(lambda: self._open(path))

    def _open(self, path: str) -> None:
        try:
            self.session.open_path(path)
        except ProjectError as exc:
            show_error(self, "Could not open the project", str(exc),
                       "Choose the folder that holds project.json.")

    def open_sample(self) -> None:
        """Build the sample project in a worker (first time only) and open it."""
        if self.sample_worker is not None and self.sample_worker.is_running():
            return
        from tl_desktop.sample import default_folder
        from tl_desktop.ui.settings import projects_folder

        folder = default_folder(projects_folder())
        self.statusBar().showMessage(f"Preparing the sample project (handwritten digits) in {folder}…")
        self.sample_worker = Worker(tasks.sample_task, str(folder), name="sample")
        self.sample_worker.finished.connect(lambda folder: self.open_path(str(folder)))
        self.sample_worker.errored.connect(
            lambda f: show_error(self, "Could not create the sample project", f.message, "", f.details))
        self.sample_worker.start()

    # --- help and settings --------------------------------------------------------------------------
    def show_glossary(self) -> None:
        """F1: the glossary at the term of the focused widget, else its index (``ui/glossary.py``)."""
        from tl_desktop.ui.glossary import show_for_focus

        show_for_focus(self)

    def show_tour(self) -> None:
        from tl_desktop.ui.tour import start_tour

        start_tour(self)

    def show_settings(self) -> None:
        from tl_desktop.ui.preferences import open_settings

        open_settings(self)

    def show_log(self) -> None:
        open_file(self.log_file, self)  # says where the log is when no program opens it

    def about(self) -> None:
        QMessageBox.about(self, "About tl-desktop",
                          f"<b>tl-desktop {__version__}</b><br>Transfer learning on your own images, offline."
                          f"<br><br>Log file: {self.log_file}")

    # --- geometry and closing -----------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        geometry = app_settings().value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1200, 800)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        train = self.views["train"]
        if train.is_training():
            if not self._close_when_stopped:
                answer = QMessageBox.question(
                    self, "Training is running",
                    "A model is being trained. Stop training and close?\n\nThe epochs finished so far are kept; "
                    "you can continue the run later.")
                if answer != QMessageBox.StandardButton.Yes:
                    event.ignore()
                    return
                self._close_when_stopped = True
                self._pending_switch = None  # closing wins over a switch still waiting
                train.run_ended.connect(self.close)
                train.stop()
                self.statusBar().showMessage("Stopping training… the window closes when the current step ends.")
            event.ignore()
            return
        self._shutdown()
        event.accept()

    def _shutdown(self) -> None:
        self.warm_up_timer.stop()
        settings = app_settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.sync()
        for view in self.views.values():
            if hasattr(view, "shutdown"):
                view.shutdown()
        if self.sample_worker is not None and self.sample_worker.is_running():
            self.sample_worker.stop()
            self.sample_worker.wait()
        for worker in list(Worker.live):  # those a project switch dropped (``drop_workers``)
            worker.stop()
            worker.wait()
        self.session.save()
