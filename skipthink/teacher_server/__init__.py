"""The simulated teacher: an OpenAI-compatible server with a scripted backend (solves the
synthetic datasets, writes zero-shot-CoT-style rationales) and a replay backend (recorded
completions), with fault injection. The pipeline talks to it with the official `openai` client
over HTTP, exactly as to a real endpoint."""

from skipthink.teacher_server.faults import ServerFaults
from skipthink.teacher_server.server import build_app, start_server, start_server_process

__all__ = ["ServerFaults", "build_app", "start_server", "start_server_process"]
