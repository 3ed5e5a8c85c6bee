"""pando-skills: reusable SKILL.md instruction packs for Pando (Claude-Code / Agent Skills compatible)."""

__version__ = "0.1.0"
