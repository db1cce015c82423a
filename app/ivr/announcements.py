"""What the backend itself tells a caller, in the call's language: the wait loop's figures, the
callback option and its confirmation, an agent who could not be reached. Pure.

A flow's own prompts are the admin's (app/ivr/flow.py); these few are the queue's, spoken in
every flow alike, so they live here in each language a flow may choose (app/ivr/actions.py's
`Language`), with the flow's voice for it.
"""

from __future__ import annotations

import math
from datetime import timedelta

from app.ivr.actions import Language, Say

KEY_NAMES = {
    Language.en_us: {"*": "star", "#": "hash"},
    Language.zh_cn: {"*": "星号键", "#": "井号键"},
}


def _say(text: str, language: Language, voice: str | None) -> Say:
    return Say(text=text, language=language, voice=voice)


def position_and_wait(
    language: Language, voice: str | None, position: int, wait: timedelta | None
) -> list[Say]:
    """ "You are number 3 in line. Your wait is about 4 minutes." (no wait: the position only,
    as when no agent is staffed or no call was handled lately)."""
    if language is Language.zh_cn:
        told = [f"您现在排在第 {position} 位。"]
        if wait is not None:
            told.append(
                "预计等待不到一分钟。"
                if wait < timedelta(minutes=1)
                else f"预计等待约 {_minutes(wait)} 分钟。"
            )
    else:
        told = [f"You are number {position} in line."]
        if wait is not None:
            minutes = _minutes(wait)
            told.append(
                "Your wait is less than a minute."
                if wait < timedelta(minutes=1)
                else f"Your wait is about {minutes} minute{'s' if minutes > 1 else ''}."
            )
    return [_say(" ".join(told) if language is Language.en_us else "".join(told), language, voice)]


def _minutes(wait: timedelta) -> int:
    return max(1, math.ceil(wait.total_seconds() / 60))


def callback_option(language: Language, voice: str | None, key: str) -> Say:
    name = KEY_NAMES[language].get(key, key)
    if language is Language.zh_cn:
        return _say(f"如需回电并保留您的排队位置，请按{name}。", language, voice)
    return _say(
        f"To be called back without losing your place in line, press {name}.", language, voice
    )


def callback_confirmed(language: Language, voice: str | None) -> Say:
    if language is Language.zh_cn:
        return _say("谢谢，我们会按此号码给您回电，您的排队位置已保留。再见。", language, voice)
    return _say(
        "Thank you. We will call you back at this number, and you keep your place. Goodbye.",
        language,
        voice,
    )


def agent_unreachable(language: Language, voice: str | None) -> Say:
    if language is Language.zh_cn:
        return _say("抱歉，客服暂时未能接通，请继续等待。", language, voice)
    return _say("Sorry, the agent could not be reached. Please hold.", language, voice)
