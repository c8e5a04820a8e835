"""Step 2, Model: the catalog of pretrained backbones, which one to pick, and importing a weights file."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.models import catalog as models
from tl_desktop.ui.data.scan_report import make_table
from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.common import hint, label, title
from tl_desktop.ui.widgets.errors import show_error
from tl_desktop.workers import Failure, Worker, tasks

COLUMNS = ["Model", "Works offline", "Size\n(million weights)", "Image size\n(px)",
           "Right on everyday photos\n(ImageNet top-1)", "When to pick it"]
HEADER_TIPS = {
    2: "How many numbers the network learns: bigger is slower and needs more images.",
    3: "The side of the square image the network looks at; your images are resized to it.",
    4: "How often the network named the right one of 1,000 kinds of everyday photo (its ImageNet top-1 "
       "accuracy): a rough guide to its strength, not a prediction of how it will do on your images.",
}
ADVICE = ("Not sure? Keep <b>EfficientNet-Lite0</b>: it is small, fast on an ordinary laptop, and its pretrained "
          "weights are already on this computer. Bigger models help with thousands of images and a GPU. Models "
          "marked “download once” need an internet connection the first time, unless you import their weights.")


class ModelView(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.catalog = models.catalog()
        self.check_worker: Worker | None = None
        self.table = self._make_table()
        self.weights = label("", wrap=True)
        self.import_button = QPushButton("Import weights file…", toolTip=(
            "Use pretrained weights you have as a file (.safetensors or .pth), e.g. from your institution or a "
            "colleague's earlier training, instead of the standard weights learned from everyday photos "
            "(ImageNet)."))
        self.import_button.clicked.connect(self.import_weights)
        self.clear_button = QPushButton("Use the standard weights", toolTip=(
            "Forget the imported weights file: start from the weights learned from everyday photos (ImageNet)"))
        self.clear_button.clicked.connect(lambda: self.set_weights_file(None))
        self._arrange()
        self.table.itemSelectionChanged.connect(self._on_selection)
        session.project_changed.connect(self._on_project)

    def _make_table(self):
        table = make_table(COLUMNS, "The pretrained networks you can start from")
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for column, tip in HEADER_TIPS.items():
            table.horizontalHeaderItem(column).setToolTip(tip)
        table.setRowCount(len(self.catalog))
        table.setWordWrap(True)
        for row, info in enumerate(self.catalog):
            offline = models.offline_weights_available(info.name)
            cells = [info.label, "✔ offline" if offline else "download once", f"{info.params_m:.1f}",
                     str(info.input_size), f"{info.imagenet_top1:.1f} %", info.hint]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, info.name)
                item.setToolTip(info.hint)
                if col == 1:
                    item.setForeground(QColor("#2e9d5b") if offline else QColor("#b07a1e"))
                if col in (2, 3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(row, col, item)
        table.resizeRowsToContents()
        return table

    def _arrange(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch()
        box = QVBoxLayout(self)
        box.addWidget(title("2. Starting point"))
        advice = hint(ADVICE)
        advice.setTextFormat(Qt.TextFormat.RichText)
        box.addWidget(advice)
        box.addWidget(self.table, 1)
        box.addWidget(self.weights)
        box.addLayout(buttons)

    # --- choice -------------------------------------------------------------------------------------
    def selected_model(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None

    def _on_selection(self) -> None:
        name, project = self.selected_model(), self.session.project
        if name and project and project.settings.model != name:
            project.settings.model = name
            project.settings.weights_file = None
            self._show_weights()
            self.session.mark_dirty()
            self.session.message.emit(f"Model: {models.get_info(name).label}")

    def _on_project(self, project: Any) -> None:
        if project is None:
            return
        names = [info.name for info in self.catalog]
        row = names.index(project.settings.model) if project.settings.model in names else 0
        self.table.selectRow(row)
        self._show_weights()

    # --- imported weights ---------------------------------------------------------------------------
    def import_weights(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Weights file", "", "Weights (*.safetensors *.pth *.pt)")
        if file:
            self.set_weights_file(file)

    def set_weights_file(self, file: str | None) -> None:
        project = self.session.project
        if project is None:
            return
        project.settings.weights_file = file
        self.session.mark_dirty()
        self._show_weights()
        if file:
            self._check(project.settings.model, file)

    def _check(self, model: str, file: str) -> None:
        self.weights.setText(f"Checking that {file} fits the chosen model…")
        self.check_worker = Worker(tasks.check_weights_task, model, file, name="check-weights")
        self.check_worker.finished.connect(lambda text: self.weights.setText(f"✔ {text}. Training starts from it."))
        self.check_worker.errored.connect(self._on_check_failed)
        self.check_worker.start()

    def _on_check_failed(self, failure: Failure) -> None:
        self.set_weights_file(None)
        show_error(self, "These weights cannot be used", failure.message,
                   "Pick the model the weights were made for, or another file.", failure.details)

    def _show_weights(self) -> None:
        project = self.session.project
        file = project.settings.weights_file if project else None
        self.clear_button.setVisible(bool(file))
        self.weights.setText(f"Weights: imported file {file}" if file else
                             "Weights: the model's standard starting point, learned from 1.3 million everyday "
                             "photos (ImageNet-1k).")

    def shutdown(self) -> None:
        if self.check_worker is not None and self.check_worker.is_running():
            self.check_worker.wait()
