"""The stylesheets' component classes as the styles of Text a widget builds itself.

Every colour is a theme variable in styles/*.tcss. A widget that builds its
own Text (a row, the change, a log line) looks its component classes up
here, and builds that Text again when a theme switch changes them: Text
built with the old theme's colours would keep them.
"""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


def component_style(widget: Widget, name: str) -> Style:
    """A component class's style for a span of Text: its own rules only, with its
    colours as they show on the widget. A colour with alpha (`$text-muted` is
    `auto 60%`, a badge's `$warning 30%`) loses that alpha in a partial style:
    muted text turned full white, white on a light theme's background, and a
    badge full orange under white text."""
    # No styles while the widget is being taken down (the app quitting mid-update).
    style = widget.get_component_rich_style(name, partial=True, default=Style.null())
    if style.color is not None or style.bgcolor is not None:
        shown = widget.get_component_rich_style(name, partial=False, default=Style.null())
        style += Style.from_color(shown.color if style.color is not None else None,
                                  shown.bgcolor if style.bgcolor is not None else None)
    return style


class Themed(Widget):
    """A widget whose Text is styled by its component classes, and built again
    (`restyle`) when a theme switch changes what they look like.

    Named after the widget it is mixed into (`class Rows(DataTable, Themed)`):
    Textual finds a widget's CSS type and component classes along its first bases."""

    # A look at the component classes is on its way (see notify_style_update).
    _restyle_due = False

    def themed(self, name: str) -> Style:
        # Looked up once per theme: a thousand rows would ask for each a thousand times.
        styles = self.__dict__.setdefault("_themed_styles", {})
        style = styles.get(name)
        if style is None:
            self.__dict__.setdefault("_themed_for", self.app.theme)
            style = styles[name] = component_style(self, name)
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # Every change of style calls in: focus and hover too, which tint the table's
        # background a little. Only a theme switch builds the Text again: at ten thousand
        # rows that is most of a second, too much to pay for each Tab.
        if (self.__dict__.get("_themed_styles") and not self.__dict__.get("_restyle_due")
                and self.__dict__.get("_themed_for") != self.app.theme):
            self._restyle_due = True
            # Called before the component classes are styled afresh: they are
            # looked at once the stylesheet's update is done.
            self.call_later(self._restyle_if_changed)

    def _restyle_if_changed(self) -> None:
        self._restyle_due = False
        old = self.__dict__.get("_themed_styles", {})
        new = {name: component_style(self, name) for name in old}
        self.__dict__["_themed_for"] = self.app.theme
        if self.is_mounted and new != old:
            self.__dict__["_themed_styles"] = new
            self.restyle()

    def restyle(self) -> None:
        """Build again whatever Text was styled with the component classes."""
