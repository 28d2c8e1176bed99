"""Labelling configs: the normal/defect classification config we create, and the Choices control we read.

Label Studio shows a prediction only when its `from_name`/`to_name` name a control and an object
of the project's config and its choice is one of the control's values; anything else is silently
hidden in the UI. So the control is always taken from the project's own config, and a config
that cannot carry our predictions is an error that says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from annotation.errors import LineInspectError

DEFAULT_LABELS = ("normal", "defect")


class LabelConfigError(LineInspectError):
    """A labelling config that lineinspect cannot read or predict into."""


@dataclass(frozen=True)
class ChoicesControl:
    """The Choices control that classifies an image: names as Label Studio wants them back."""

    from_name: str
    to_name: str
    image_key: str  # the task.data field the Image object shows
    labels: tuple[str, ...]

    def choice_for(self, verdict: str, label_map: dict[str, str] | None = None) -> str:
        """The control's value for our verdict (`normal`/`defect`), mapped when the project names them otherwise."""
        label = (label_map or {}).get(verdict, verdict)
        if label not in self.labels:
            raise LabelConfigError(
                f"the project's Choices control {self.from_name!r} has no choice {label!r} for verdict {verdict!r} "
                f"(its choices: {', '.join(self.labels)}); map it with --label {verdict}=CHOICE"
            )
        return label

    def result(self, choice: str) -> list[dict]:
        """A prediction/annotation result that selects `choice`."""
        return [
            {"from_name": self.from_name, "to_name": self.to_name, "type": "choices", "value": {"choices": [choice]}}
        ]


def confidence(score: float, threshold: float) -> float:
    """A prediction's `score`: how far the defect score is from the threshold, as a fraction of the room
    on its side (0 at the threshold, 1 at 0 or 1), so Label Studio's uncertainty sampling shows the
    images nearest the threshold first."""
    room = (1.0 - threshold) if score >= threshold else threshold
    return min(1.0, abs(score - threshold) / room) if room > 0 else 1.0


def classification_config(labels: tuple[str, ...] = DEFAULT_LABELS) -> str:
    """An image-classification config: one image, one single-choice control named `verdict`."""
    if len(labels) < 2 or len(set(labels)) != len(labels) or not all(label.strip() for label in labels):
        raise LabelConfigError(f"labels {list(labels)}: give at least two distinct, non-empty labels")
    choices = "".join(f"\n    <Choice value={quoteattr(label)}/>" for label in labels)
    return (
        '<View>\n  <Image name="image" value="$image" zoom="true"/>\n'
        f'  <Choices name="verdict" toName="image" choice="single" showInline="true" required="true">{choices}\n'
        "  </Choices>\n</View>\n"
    )


def choices_control(label_config: str, from_name: str | None = None) -> ChoicesControl:
    """The Choices control on an Image in `label_config` (the one named `from_name` when there are several)."""
    try:
        root = ElementTree.fromstring(label_config)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise LabelConfigError(f"the labelling config is not valid XML: {exc}") from None
    images = {el.get("name"): el.get("value", "") for el in root.iter() if el.tag == "Image"}
    controls = [el for el in root.iter() if el.tag == "Choices" and el.get("toName") in images]
    if not controls:
        raise LabelConfigError(
            "the labelling config has no <Choices> control on an <Image>: lineinspect predicts image classes, "
            "so add one (`lineinspect labelstudio project create` makes a config that has it)"
        )
    if from_name is not None:
        controls = [el for el in controls if el.get("name") == from_name]
        if not controls:
            raise LabelConfigError(f"the labelling config has no Choices control named {from_name!r} on an image")
    elif len(controls) > 1:
        names = ", ".join(repr(el.get("name")) for el in controls)
        raise LabelConfigError(
            f"the labelling config has several Choices controls ({names}); pick one with --from-name"
        )
    control = controls[0]
    to_name = control.get("toName")
    labels = tuple(el.get("value") or el.get("alias") for el in control.iter("Choice"))
    return ChoicesControl(control.get("name"), to_name, images[to_name].lstrip("$"), labels)
