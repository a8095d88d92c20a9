"""Composition root: the one place that turns settings into concrete adapters.

Web, API, CLI and workers all start here; nothing else picks an implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldis.messages.render import Renderer
from ldis.services import verification
from ldis.services.links import Links
from ldis.services.ports import TaskQueue
from ldis.settings import Settings, load_settings
from ldis.store.db import Database


@dataclass
class Container:
    settings: Settings
    db: Database
    queue: TaskQueue
    renderer: Renderer
    links: Links
    _templates: frozenset[str] | None = field(default=None, repr=False)

    def templates(self) -> frozenset[str]:
        if self._templates is None:
            self._templates = self.renderer.templates()
        return self._templates

    def sending(self) -> verification.Sending:
        """What starting a contact's verification needs: keys, links' base, the queue."""
        return verification.Sending(self.settings.secret(), self.settings.public_url, self.queue)

    def close(self) -> None:
        self.db.dispose()


def build(settings: Settings | None = None) -> Container:
    settings = settings or load_settings()
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    # Imported here so that importing ldis never imports Celery (the domain tests stay fast).
    from workers.queue import CeleryTaskQueue

    return Container(
        settings=settings,
        db=Database(settings.effective_database_url),
        queue=CeleryTaskQueue(settings),
        renderer=Renderer(settings.templates_path),
        links=Links(settings.secret(), settings.public_url),
    )
