"""Answer sets shared by the template's tests and the nox sessions (no imports: nox loads it too)."""

from typing import Any

# Every question with an answer that differs from its default, and unusual values.
NON_DEFAULT_ANSWERS: dict[str, Any] = {
    "project_name": "Café Ünïcode Agent",
    "project_slug": "cafe-agent",
    "description": 'Says "hi" & <more>',
    "version": "2.0.0rc1",
    "python_version": "3.12",
    "api_port": 8123,
    "cors_origins": "https://app.example.com, http://localhost:5173",
    "package_manager": "uv",
    "include_livekit": False,
    "auth": "bearer",
}
