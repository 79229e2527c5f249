"""A small module to try coder-lsp on: `scripts/try` completes the empty line below."""


def is_palindrome(text: str) -> bool:
    """Return True if text reads the same both ways, ignoring case and punctuation."""
    cleaned = [ch.lower() for ch in text if ch.isalnum()]
    


if __name__ == "__main__":
    print(is_palindrome("A man, a plan, a canal: Panama"))
