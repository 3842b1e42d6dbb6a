"""The language of an answer's texts (the reasons): the ``lang`` query parameter, else the
``Accept-Language`` header, else Simplified Chinese.

``lang`` is part of the API: a value other than ``zh`` or ``en`` is a 422 naming
``query.lang``. The header is negotiated the HTTP way: languages the service does not write
are passed over, and a header with none it writes gets Chinese
(:func:`recommender.serving.requested_language`). The answer says which language it is in
(``Content-Language``) and that it depends on the header (``Vary: Accept-Language``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Header, Query, Response

from recommender.serving import DEFAULT_LANGUAGE, LANGUAGES, requested_language

LanguageCode = Literal[LANGUAGES]  # type: ignore[valid-type]
# The tag each language's texts are sent under: the Chinese texts are Simplified.
CONTENT_LANGUAGE = {"zh": "zh-Hans", "en": "en"}


async def answer_language(
    response: Response,
    lang: Annotated[LanguageCode | None, Query(
        description="Language of the reasons' texts: `zh` (Simplified Chinese) or `en`. "
                    "Wins over Accept-Language.")] = None,
    accept_language: Annotated[str | None, Header(
        description="Used when `lang` is not given: the best of `zh` and `en` it accepts "
                    f"(any `zh-*` tag gets Simplified Chinese); otherwise `{DEFAULT_LANGUAGE}`.",
        examples=["en-GB,en;q=0.9"])] = None,
) -> str:
    """The answer's language; sets ``Content-Language`` and ``Vary`` on the response."""
    language = requested_language(lang, accept_language)
    response.headers["Content-Language"] = CONTENT_LANGUAGE[language]
    response.headers.append("Vary", "Accept-Language")
    return language


Language = Annotated[str, Depends(answer_language)]

__all__ = ["CONTENT_LANGUAGE", "Language", "LanguageCode", "answer_language"]
