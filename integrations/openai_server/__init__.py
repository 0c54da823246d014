"""An OpenAI-compatible HTTP server over structgen (``structgen serve --model PATH``).

``create_app(model)`` builds the FastAPI app; ``serve(...)`` runs it with uvicorn. Needs the
``server`` extra (fastapi, uvicorn). Uses only structgen's public API.
"""

from structgen.integrations.openai_server.app import ServerConfig, create_app, serve

__all__ = ["ServerConfig", "create_app", "serve"]
