"""What a person fills in to start auto-edits: on the recording page and in the admin's batch action.

The forms only shape the input; whether it is enough (a preset or a prompt, a known resolution)
is the machine's question (`eid.jobs.machine.start_auto_edit` answers AutoEditRefused in plain
words), so the page, the admin, the API and the command line refuse the same things the same way.
"""

from __future__ import annotations

from typing import Any

from django import forms

from .models import MediaType, PromptPreset

RESOLUTIONS = [("", "Descript's default"), ("720p", "720p"), ("1080p", "1080p"), ("4K", "4K")]


class PresetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class AutoEditForm(forms.Form):
    """A preset or free text, and what Descript should publish."""

    preset = PresetChoiceField(
        queryset=PromptPreset.objects.none(), required=False, widget=forms.RadioSelect,
        empty_label="My own instructions (below)", to_field_name="name")
    prompt = forms.CharField(
        required=False, max_length=4000, strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "e.g. Remove filler words and long pauses"}),
        help_text="Instructions for Descript's Underlord. With a preset chosen, these are added to it.")
    media_type = forms.ChoiceField(choices=MediaType.choices, required=False, initial=MediaType.AUDIO,
                                   widget=forms.RadioSelect, label="Publish as")
    resolution = forms.ChoiceField(choices=RESOLUTIONS, required=False, label="Video resolution")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        presets = PromptPreset.objects.filter(enabled=True)
        preset_field = self.fields["preset"]
        assert isinstance(preset_field, forms.ModelChoiceField)
        preset_field.queryset = presets

    def start_arguments(self) -> dict[str, Any]:
        """The keyword arguments of start_auto_edit / start_batch this form stands for."""
        data = self.cleaned_data
        return {
            "preset": data.get("preset"),
            "prompt": data.get("prompt") or None,
            "media_type": data.get("media_type") or None,
            "resolution": data.get("resolution") or None,
        }

    def errors_in_words(self) -> str:
        """Every field error as one sentence (the page answers a 400 in plain words)."""
        parts = []
        for name, errors in self.errors.items():
            label = self.fields[name].label or name.replace("_", " ") if name in self.fields else ""
            words = " ".join(str(error) for error in errors)
            parts.append(f"{label}: {words}" if label else words)
        return " ".join(parts)
