"""Progress bars that store their finished state in a notebook.

``tqdm.auto`` shows a widget bar in Jupyter, but the output a notebook *stores* for it (the text/plain
fallback that GitHub, nbviewer and a closed notebook show) is the bar's text at the moment it was first
displayed: "0/150", directly above the "trained 150 iterations" line. Here the bar is displayed with a
display id and that output is replaced by the closed bar, so the stored text reads "150/150".
Outside Jupyter this is plain ``tqdm`` on stderr.
"""

from __future__ import annotations

from typing import Any


def progress(total: int | None = None, initial: int = 0, desc: str | None = None, disable: bool = False, **kwargs: Any):
    """A ``tqdm.auto`` bar (same arguments) whose stored notebook output ends in its final state."""
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm as notebook_tqdm

    if disable or not issubclass(tqdm, notebook_tqdm):  # tqdm.auto picked the terminal bar
        return tqdm(total=total, initial=initial, desc=desc, disable=disable, **kwargs)
    return _notebook_bar(tqdm)(total=total, initial=initial, desc=desc, **kwargs)


def _notebook_bar(base: type) -> type:
    class FinishedBar(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            from IPython.display import display

            super().__init__(*args, display=False, **kwargs)
            self._handle = display(self.container, display_id=True)
            self.displayed = True

        def close(self) -> None:
            super().close()
            if getattr(self, "_handle", None) is not None:
                self._handle.update(self.container)  # the stored text/plain is now the finished bar
                self._handle = None

    return FinishedBar
