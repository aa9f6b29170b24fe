"""Stage 3: BuildPlan -> build-context directory (a pure projection of the plan into files)."""

from .build_dir import RenderedContext, render_context

__all__ = ["RenderedContext", "render_context"]
