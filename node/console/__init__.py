"""The web console (SPEC §9): server-rendered pages over the control plane's storage.

    app = create_app(storage, tokens=...)          # node.control.api
    setup_console(app, engine=config.engine)       # pages under /console/

Pages: Statistics, Attacks (+ detail with heatmaps and actions), API Sessions (+ a session's
requests, CSV), IP lists (+ history, add / remove), Nodes and profiles. Login exchanges an
operator or viewer token for a server-side session (node.console.auth).
"""

from node.console.app import Console, setup_console

__all__ = ["Console", "setup_console"]
