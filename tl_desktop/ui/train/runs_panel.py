"""The Train step's run list as a workbench: each run's name, network, method, image size, epochs, best epoch
and headline figure; Rename…, Delete… and Compare… act on the selection and say in place why they cannot.

A run's name is a display name kept in ``project.json`` (``core.project.run_list``): its folder keeps its
name, since paths to it are written in its own files, in exported models and in runs continued from it.
Delete moves the run folder to the system trash (``QFile.moveToTrash``); where there is no trash, a dialog
names the run and its folder and deletes it for good only on yes. A run that trains cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QFile, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.project import run_list
from tl_desktop.core.project.project_file import RunEntry
from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.common import hint, label

STATE_WORDS = {"cancelled": "stopped", "failed": "stopped by an error", "running": "training or interrupted",
               "created": "not started", "missing": "folder missing"}


def move_to_trash(folder: Path) -> bool:
    """Move a folder to the system trash; False when the platform or the drive has none."""
    moved, _where = QFile.moveToTrash(str(folder))
    return bool(moved)


def confirm_permanent_delete(parent: QWidget | None, names: list[str], folders: list[Path]) -> bool:
    """Ask before deleting for good (no trash here): names every run and folder that would go."""
    listing = "\n".join(f"• {name}: {folder}" for name, folder in zip(names, folders, strict=True))
    answer = QMessageBox.warning(
        parent, "Delete for good?", f"There is no trash on this computer or drive, so this cannot be undone.\n\n"
        f"Delete these runs and their folders (trained model, figures, curves)?\n{listing}\n\n"
        "Exported models in the exports folder are kept.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def row_text(facts: run_list.RunFacts) -> str:
    """Three lines: the name; network (unless the name says it), method, image size and epochs; the headline
    figures and the best epoch."""
    network = "" if facts.name.endswith(facts.network) else f"{facts.network} · "
    size = f"{facts.image_size} px" if facts.image_size else "size unknown"
    epochs = (f"{facts.epochs_run} of {facts.epochs} epochs" if facts.epochs else f"{facts.epochs_run} epochs")
    state = STATE_WORDS.get(facts.state)
    figures = " · ".join(f"{f.label.lower()} {f.text}" for f in facts.headline[:2]) or "no test result yet"
    best = f" · best epoch {facts.best_epoch}" if facts.best_epoch else ""
    return (f"{facts.name}{f'  ({state})' if state else ''}\n{network}{facts.strategy} · {size} · {epochs}\n"
            f"{figures}{best}")


class RenameRunDialog(QDialog):
    """The run's new name; Rename refuses in place an empty, too long or already used name."""

    def __init__(self, session: Session, entry: RunEntry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.entry = session, entry
        self.setWindowTitle("Rename the run")
        self.name = QLineEdit(run_list.display_name(entry), maxLength=run_list.MAX_NAME + 20,
                              toolTip=f"A name for the run, up to {run_list.MAX_NAME} characters")
        self.name.selectAll()
        self.name.textChanged.connect(lambda _t: self.problem.hide())
        self.problem = label("", "badge-warn", wrap=True)
        self.problem.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.rename_button = buttons.addButton("Rename", QDialogButtonBox.ButtonRole.AcceptRole)
        self.rename_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        folder = session.project.run_path(entry) if session.project else Path(entry.path)
        layout = QVBoxLayout(self)
        layout.addWidget(label("Name:"))
        layout.addWidget(self.name)
        layout.addWidget(hint(f"Only the name shown in the app changes; the run stays in the folder {folder}."))
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.setMinimumWidth(480)

    def accept(self) -> None:  # noqa: D102 - renames, or says in place why not
        project = self.session.project
        problem = run_list.name_problem(project, self.entry, self.name.text()) if project else "No project."
        if problem:
            self.problem.setText(problem)
            self.problem.show()
            self.name.setFocus()
            return
        run_list.rename_run(project, self.entry, self.name.text())
        self.session.save()
        self.session.runs_changed.emit()
        super().accept()


class RunsPanel(QGroupBox):
    """The list of the project's runs, newest first; ``current_changed`` with the folder of a clicked run."""

    current_changed = Signal(object)  # QListWidgetItem | None, as QListWidget.currentItemChanged

    def __init__(self, session: Session, training: Callable[[], Path | None], parent: QWidget | None = None) -> None:
        super().__init__("Runs of this project", parent)
        self.session, self.training = session, training
        self.list = QListWidget(toolTip="Every run of this project. Click one to see its curves, settings and "
                                        "epochs, and to evaluate or export it; Ctrl+click several to compare.")
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)  # three lines a run: where one ends and the next begins
        self.list.setSpacing(2)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.currentItemChanged.connect(lambda item, _old: self.current_changed.emit(item))
        self.list.itemSelectionChanged.connect(lambda: self.note.hide())
        self.rename_button = QPushButton("Rename…", toolTip="Give the selected run a name of your own")
        self.rename_button.clicked.connect(self.rename)
        self.delete_button = QPushButton("Delete…", toolTip="Move the selected runs to the trash")
        self.delete_button.clicked.connect(self.delete)
        self.compare_button = QPushButton("Compare…", toolTip="Select two or more runs (Ctrl+click), then compare "
                                                              "their settings, figures and curves side by side")
        self.compare_button.clicked.connect(self.compare)
        self.note = label("", "hint", wrap=True)
        self.note.hide()
        self._layout = QVBoxLayout(self)
        self._layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        for button in (self.rename_button, self.delete_button, self.compare_button):
            row.addWidget(button)
        self._layout.addLayout(row)
        self._layout.addWidget(self.note)

    def add_row(self, row: QLayout) -> None:
        """Another row of buttons under the list (continue, server)."""
        self._layout.addLayout(row)

    # --- content ------------------------------------------------------------------------------------
    def fill(self) -> None:
        """The project's runs, newest first; the run selected before stays selected."""
        current = self.current_dir()
        self.note.hide()  # what it said was about the list as it was
        self.list.blockSignals(True)
        self.list.clear()
        project = self.session.project
        for entry in reversed(project.runs if project else []):
            item = QListWidgetItem(row_text(run_list.run_facts(project, entry)))
            item.setData(Qt.ItemDataRole.UserRole, str(project.run_path(entry)))
            item.setToolTip(f"Folder: {project.run_path(entry)}")
            self.list.addItem(item)
            if current is not None and Path(item.data(Qt.ItemDataRole.UserRole)) == current:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

    def current_dir(self) -> Path | None:
        item = self.list.currentItem()
        return Path(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def select(self, run_dir: str | Path, *, quiet: bool = False) -> bool:
        """Make the run current (its curves and evaluation follow, unless ``quiet``: only the list changes);
        False when it is not listed."""
        for row in range(self.list.count()):
            if Path(self.list.item(row).data(Qt.ItemDataRole.UserRole)) == Path(run_dir):
                self.list.blockSignals(quiet)
                self.list.setCurrentRow(row)
                self.list.blockSignals(False)
                return True
        return False

    def name_of(self, run_dir: str | Path) -> str:
        """The run's name as the list shows it (its folder name when the project does not list it)."""
        project = self.session.project
        entry = next((e for e in project.runs if project.run_path(e) == Path(run_dir)), None) if project else None
        return run_list.display_name(entry) if entry is not None else Path(run_dir).name

    def selected_entries(self) -> list[RunEntry]:
        """The selected runs' entries, in list order (newest first)."""
        project = self.session.project
        if project is None:
            return []
        by_path = {project.run_path(e): e for e in project.runs}
        rows = sorted(self.list.row(item) for item in self.list.selectedItems())
        chosen = [Path(self.list.item(r).data(Qt.ItemDataRole.UserRole)) for r in rows]
        return [by_path[p] for p in chosen if p in by_path]

    def say(self, text: str) -> None:
        """A line under the buttons: why a button did nothing, or what it did."""
        self.note.setText(text)
        self.note.show()

    # --- actions ------------------------------------------------------------------------------------
    def rename(self) -> RenameRunDialog | None:
        entries = self.selected_entries()
        if len(entries) != 1:
            self.say("Select one run in the list to rename it.")
            return None
        self.rename_dialog = RenameRunDialog(self.session, entries[0], self)
        self.rename_dialog.open()
        return self.rename_dialog

    def delete(self) -> None:
        project, entries = self.session.project, self.selected_entries()
        if project is None or not entries:
            self.say("Select the run to delete in the list first.")
            return
        for entry in entries:
            problem = run_list.delete_problem(project, entry, self.training())
            if problem:
                self.say(problem)
                return
        gone = [e for e in entries if not project.run_path(e).exists() or move_to_trash(project.run_path(e))]
        left = [e for e in entries if e not in gone]
        if left and confirm_permanent_delete(self, [run_list.display_name(e) for e in left],
                                             [project.run_path(e) for e in left]):
            gone += self._delete_for_good(left)
        for entry in gone:
            run_list.forget_run(project, entry)
        if gone:
            self._after_delete(gone, trashed=not left)

    def _delete_for_good(self, entries: list[RunEntry]) -> list[RunEntry]:
        done = []
        for entry in entries:
            try:
                run_list.delete_folder(self.session.project.run_path(entry))
            except OSError as exc:
                self.say(f"“{run_list.display_name(entry)}” could not be deleted: {exc.strerror or exc}. Close "
                         "programs that use its files and try again.")
                continue
            done.append(entry)
        return done

    def _after_delete(self, gone: list[RunEntry], trashed: bool) -> None:
        names = ", ".join(f"“{run_list.display_name(e)}”" for e in gone)
        self.session.save()
        self.session.runs_changed.emit()
        project = self.session.project
        if self.session.run_dir is not None and not self.session.run_dir.exists() and project.runs:
            self.select(project.run_path(project.runs[-1]))
        where = "moved to the trash (restore it from there if you need it again)" if trashed else "deleted"
        self.say(f"{names} {where}.")
        self.session.message.emit(f"Run {names} {where}.")

    def compare(self) -> QWidget | None:
        """Open the compare window on the selected runs (two or more); returns it (not blocking)."""
        entries = self.selected_entries()
        if len(entries) < 2 or self.session.project is None:
            self.say("Select two or more runs in the list (Ctrl+click or Shift+click), then press Compare….")
            return None
        from tl_desktop.ui.train.compare import CompareWindow

        self.compare_window = CompareWindow(self.session.project, entries, self)
        self.compare_window.show()
        return self.compare_window
