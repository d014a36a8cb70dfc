"""eid.sharepage: which descript:* tags of a share page count, and decoding the page."""

from __future__ import annotations

import time

import pytest

from eid.sharepage import (
    SHARE_PATH,
    ShareTagError,
    ShareTags,
    decode_page,
    parse_share_page,
    share_id_from_path,
)

SOURCE = "a50ffa05-0d1b-4b53-9b0c-6a3e8e6f8e11"
AUDIO = "https://cdn.descript.com/p/JNWta1T8TKX/audio.m4a?Signature=abc&Expires=1"


def head(*metas: str, title: str = "<title>My edit</title>") -> str:
    return f"<!doctype html><html><head><meta charset=utf-8>{title}{''.join(metas)}</head>"


def meta(prop: str, content: str, attr: str = "property") -> str:
    return f'<meta {attr}="{prop}" content="{content}">'


FULL = head(
    meta("og:title", "Episode 12 (edited)"),
    meta("descript:partner", "drive-123"),
    meta("descript:source", SOURCE),
    meta("descript:audio", AUDIO.replace("&", "&amp;")),
    meta("descript:video", "https://cdn.descript.com/p/x/video.mp4"),
    meta("descript:subtitles", "https://cdn.descript.com/p/x/subs.vtt"),
    meta("descript:transcript", "https://cdn.descript.com/p/x/transcript.txt"),
) + "<body><h1>Episode 12</h1></body></html>"


def test_all_tags():
    assert parse_share_page(FULL) == ShareTags(
        partner="drive-123",
        source=SOURCE,
        audio=AUDIO,  # &amp; in the attribute decoded
        video="https://cdn.descript.com/p/x/video.mp4",
        subtitles="https://cdn.descript.com/p/x/subs.vtt",
        transcript="https://cdn.descript.com/p/x/transcript.txt",
        title="Episode 12 (edited)",
    )


def test_tags_in_the_body_are_ignored():
    html = head(meta("descript:partner", "drive-123")) + (
        "<body><p>comment:</p>"
        + meta("descript:partner", "attacker")
        + meta("descript:source", SOURCE)
        + meta("descript:audio", "https://evil.example/a.m4a")
        + "</body></html>"
    )
    tags = parse_share_page(html)
    assert tags.partner == "drive-123"  # no conflict raised: the body copy does not count
    assert tags.source is None and tags.audio is None


@pytest.mark.parametrize("html", [
    # Text before any body tag starts the body in HTML, so the meta after it is body content.
    "<html><head><title>t</title></head>hello " + meta("descript:partner", "x") + "</html>",
    "<html><head><title>t</title>" + "<div>" + meta("descript:partner", "x") + "</div></head></html>",
    "<html><head>oops" + meta("descript:partner", "x") + "</head></html>",
    # A meta written inside the title, a script, or a comment is text, not a tag.
    "<html><head><title>" + meta("descript:partner", "x") + "</title></head></html>",
    "<html><head><script>var s = '" + meta("descript:partner", "x") + "';</script></head></html>",
    "<html><head><!-- " + meta("descript:partner", "x") + " --></head></html>",
    # A second head inside the body is still the body.
    head() + "<body><head>" + meta("descript:partner", "x") + "</head></body>",
])
def test_only_real_head_tags_count(html):
    assert parse_share_page(html).partner is None


def test_implicit_head_counts():
    # No <head> tag: a browser still puts leading metas in the head.
    html = "<!doctype html><html>" + meta("descript:partner", "drive-1") + "<body>x</body></html>"
    assert parse_share_page(html).partner == "drive-1"


@pytest.mark.parametrize("tag", ["partner", "source", "audio", "video", "subtitles", "transcript"])
def test_conflicting_repeats_are_refused(tag):
    html = head(meta(f"descript:{tag}", "one"), meta(f"descript:{tag}", "two"))
    with pytest.raises(ShareTagError) as err:
        parse_share_page(html)
    assert err.value.reason == f"The share page carries conflicting descript:{tag} tags."


def test_conflict_between_property_and_name_spellings():
    html = head(meta("descript:partner", "one"), meta("DESCRIPT:Partner", "two", attr="name"))
    with pytest.raises(ShareTagError):
        parse_share_page(html)


def test_identical_repeats_are_fine():
    html = head(meta("descript:partner", "drive-1"), meta("descript:partner", " drive-1 "),
                meta("descript:partner", "drive-1", attr="name"))
    assert parse_share_page(html).partner == "drive-1"


def test_name_attribute_and_case_insensitivity():
    html = ("<HTML><HEAD><META NAME='Descript:Partner' CONTENT='drive-9'>"
            "<Meta Property=\"DESCRIPT:SOURCE\" Content=\"" + SOURCE + "\"></HEAD><BODY></BODY></HTML>")
    tags = parse_share_page(html)
    assert (tags.partner, tags.source) == ("drive-9", SOURCE)


def test_no_tags_is_not_an_error():
    tags = parse_share_page("<html><head><title> Just  a\n page </title></head><body>hi</body></html>")
    assert tags == ShareTags(title="Just a page")
    assert parse_share_page("") == ShareTags()
    assert parse_share_page("not html at all") == ShareTags()


def test_unknown_and_empty_tags_are_ignored():
    tags = parse_share_page(head(meta("descript:secret", "x"), meta("descript:partner", ""),
                                 '<meta property="descript:source">'))
    assert tags == ShareTags(title="My edit")


def test_values_are_stripped_and_entities_decoded():
    html = head(meta("descript:partner", "  drive&#45;1&amp;2 \n"), meta("og:title", "Tom &amp; Jerry &quot;live&quot;"))
    tags = parse_share_page(html)
    assert tags.partner == "drive-1&2"
    assert tags.title == 'Tom & Jerry "live"'


def test_title_falls_back_to_the_title_element():
    assert parse_share_page(head(title="<title>Caf&eacute; talk</title>")).title == "Café talk"
    assert parse_share_page(head(meta("og:title", "OG"), title="<title>Other</title>")).title == "OG"


CONTROLS = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"]


@pytest.mark.parametrize("char", CONTROLS, ids=repr)
@pytest.mark.parametrize("tag", ["partner", "source", "audio", "video", "subtitles", "transcript"])
def test_control_characters_in_descript_tags_are_refused(tag, char):
    for value in (f"drive{char}123", f"{char}drive-123", f"drive-123{char}"):
        with pytest.raises(ShareTagError) as err:
            parse_share_page(head(meta(f"descript:{tag}", value)))
        assert err.value.reason == (f"The share page carries a descript:{tag} tag with characters "
                                    "that are not allowed.")


def test_a_nul_in_the_raw_page_is_refused_as_well():
    html = head(meta("descript:source", SOURCE)).replace(SOURCE, SOURCE[:8] + "\x00" + SOURCE[8:])
    with pytest.raises(ShareTagError):
        parse_share_page(html)
    # A NUL written as a character reference is already U+FFFD by HTML's rules: not a control.
    assert parse_share_page(head(meta("descript:partner", "a&#0;b"))).partner == "a\ufffdb"


def test_tab_and_line_breaks_in_descript_tags_are_kept():
    tags = parse_share_page(head(meta("descript:partner", "\tdrive\r\n-1\n")))
    assert tags.partner == "drive\r\n-1"


@pytest.mark.parametrize("char", CONTROLS, ids=repr)
def test_control_characters_in_titles_become_spaces(char):
    assert parse_share_page(head(meta("og:title", f"Episode{char}12{char}"))).title == "Episode 12"
    assert parse_share_page(head(title=f"<title>Episode{char}{char}12</title>")).title == "Episode 12"
    # An og:title of nothing but control characters leaves the title element to speak.
    assert parse_share_page(head(meta("og:title", char * 3), title="<title>Fallback</title>")).title == "Fallback"


def test_no_value_parsed_holds_a_nul():
    html = head(meta("og:title", "a\x00b"), meta("descript:partner", "p"), title="<title>t\x00</title>")
    tags = parse_share_page(html)
    assert all("\x00" not in (value or "") for value in vars(tags).values())


def test_over_long_values_are_refused():
    assert parse_share_page(head(meta("descript:audio", "https://a.example/" + "a" * 2000))).audio
    with pytest.raises(ShareTagError) as err:
        parse_share_page(head(meta("descript:audio", "https://a.example/" + "a" * 2048)))
    assert "too long" in err.value.reason


def test_self_closing_meta():
    html = '<html><head><meta property="descript:partner" content="drive-1"/><meta name=x /></head></html>'
    assert parse_share_page(html).partner == "drive-1"


def test_two_megabytes_of_junk_after_the_head_parse_fast():
    junk = "<div class=c>" + ("<p>blah &amp; <b>blah</b> " + meta("descript:partner", "attacker") + "</p>") * 40_000
    html = head(meta("descript:partner", "drive-1")) + "<body>" + junk
    assert len(html) > 2_000_000
    started = time.perf_counter()
    tags = parse_share_page(html)
    assert time.perf_counter() - started < 0.5
    assert tags.partner == "drive-1"


def test_unclosed_head_followed_by_junk_text_parses_fast():
    html = head(meta("descript:partner", "drive-1"))[: -len("</head>")] + "x" * 2_000_000
    started = time.perf_counter()
    assert parse_share_page(html).partner == "drive-1"
    assert time.perf_counter() - started < 0.5


# --------------------------------------------------------------------------------------------
# decode_page
# --------------------------------------------------------------------------------------------


def test_decode_utf8_by_default():
    assert decode_page("<title>Café</title>".encode(), None) == "<title>Café</title>"
    assert decode_page("Café".encode(), "text/html") == "Café"
    assert decode_page(b"\xef\xbb\xbfhi", "text/html; charset=utf-8") == "hi"  # BOM dropped


def test_invalid_utf8_is_refused():
    with pytest.raises(ShareTagError) as err:
        decode_page(b"<html>\xff\xfe\xc3(</html>", "text/html; charset=utf-8")
    assert err.value.reason == "The share page is not valid text."
    with pytest.raises(ShareTagError):
        decode_page(b"caf\xe9", None)  # latin-1 bytes without a header saying so


def test_latin1_charset_header():
    body = "<title>Caf\xe9 cr\xe8me</title>".encode("latin-1")
    assert decode_page(body, 'text/html; charset="ISO-8859-1"') == "<title>Café crème</title>"
    assert parse_share_page(decode_page(body, "text/html;charset=latin-1")).title == "Café crème"


@pytest.mark.parametrize("ctype", ["text/html; charset=klingon", "text/html; charset=base64", "text/html; charset=rot13"])
def test_unknown_or_non_text_charsets_are_refused(ctype):
    with pytest.raises(ShareTagError):
        decode_page(b"aGVsbG8=", ctype)


# --------------------------------------------------------------------------------------------
# share links
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, share_id", [
    ("/view/JNWta1T8TKX", "JNWta1T8TKX"),
    ("/view/JNWta1T8TKX/", "JNWta1T8TKX"),
    ("/view/" + SOURCE, SOURCE),
    ("/view/a_b-c", "a_b-c"),
    ("/view/" + "a" * 64, "a" * 64),
])
def test_share_id_from_path(path, share_id):
    assert share_id_from_path(path) == share_id


@pytest.mark.parametrize("path", ["/view/", "/view", "/embed/x", "/admin", "/view/a/b", "/view/a.b", "/view/a%20b",
                                  "/view/" + "a" * 65, "/view/x\n", "//view/x", "/VIEW/x"])
def test_share_id_from_bad_paths(path):
    with pytest.raises(ShareTagError):
        share_id_from_path(path)
    assert SHARE_PATH.fullmatch(path) is None
