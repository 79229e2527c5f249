"""LSP position <-> offset conversion, in every encoding, with clamping."""

from lsp_server.positions import UTF8, UTF16, UTF32, line_starts, offset_at, position_at

TEXT = 'a = "😋"\r\nb = "中文"\nc\rd'


def test_line_starts_only_split_on_lsp_line_breaks():
    assert line_starts("a\u2028b\x0cc\nd") == [0, 6]
    assert line_starts(TEXT) == [0, 9, 18, 20]


def test_emoji_counts_two_utf16_units_four_utf8_bytes_one_utf32():
    close_quote = TEXT.index('"', 5)
    assert offset_at(TEXT, 0, 7, UTF16) == close_quote
    assert offset_at(TEXT, 0, 9, UTF8) == close_quote
    assert offset_at(TEXT, 0, 6, UTF32) == close_quote
    for enc, col in ((UTF16, 7), (UTF8, 9), (UTF32, 6)):
        assert position_at(TEXT, close_quote, enc) == (0, col)


def test_cjk_counts_three_utf8_bytes():
    off = TEXT.index("文")
    assert position_at(TEXT, off, UTF8) == (1, 8)
    assert offset_at(TEXT, 1, 8, UTF8) == off


def test_position_inside_a_surrogate_pair_stays_before_the_character():
    emoji = TEXT.index("😋")
    assert offset_at(TEXT, 0, 6, UTF16) == emoji  # the middle of the pair


def test_past_end_of_line_clamps_to_the_line_end_before_crlf():
    assert offset_at(TEXT, 0, 999) == TEXT.index("\r")
    assert offset_at(TEXT, 2, 5) == TEXT.index("c") + 1  # bare \r line break


def test_past_end_of_document_clamps():
    assert offset_at(TEXT, 99, 0) == len(TEXT)
    assert offset_at(TEXT, -1, 3) == 0
    assert position_at(TEXT, 10_000) == (3, 1)
    assert offset_at("", 0, 5) == 0
    assert position_at("", 0) == (0, 0)


def test_round_trip_every_offset():
    for enc in (UTF8, UTF16, UTF32):
        for off in range(len(TEXT) + 1):
            if TEXT[off - 1 : off + 1] == "\r\n":
                continue  # between \r and \n is not a position
            line, col = position_at(TEXT, off, enc)
            assert offset_at(TEXT, line, col, enc) == off, (enc, off)
