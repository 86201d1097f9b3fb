"""Reads of the annotate app: who may see what, progress, agreement, the annotator page.

Layout: ``projects`` holds roles, the project list, guidelines, members and progress counts;
``assignment`` the annotator page (``assignment_page`` and its ``QuestionView``s); ``dashboard``
the curator dashboard (``project_agreement``). Every name other code imports is re-exported
here, ``_question_view`` included (``review_selectors`` lays out its questions with it).
"""

from __future__ import annotations

from annotate.selectors.assignment import (
    AssignmentPage,
    QuestionView,
    _question_view,
    assignment_for_user,
    assignment_page,
)
from annotate.selectors.dashboard import (
    AnnotatorStats,
    MetricRow,
    ProjectAgreement,
    ProjectCounts,
    QuestionAgreement,
    project_agreement,
)
from annotate.selectors.projects import (
    ADMIN,
    AnnotatorProgress,
    ProjectProgress,
    ProjectRow,
    annotator_progress,
    guidelines_html,
    project_members,
    project_progress,
    projects_for_user,
    user_role,
)

__all__ = [
    "ADMIN",
    "AnnotatorProgress",
    "AnnotatorStats",
    "AssignmentPage",
    "MetricRow",
    "ProjectAgreement",
    "ProjectCounts",
    "ProjectProgress",
    "ProjectRow",
    "QuestionAgreement",
    "QuestionView",
    "_question_view",
    "annotator_progress",
    "assignment_for_user",
    "assignment_page",
    "guidelines_html",
    "project_agreement",
    "project_members",
    "project_progress",
    "projects_for_user",
    "user_role",
]
