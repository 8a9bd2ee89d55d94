"""One error type for bad input: its message is a single line naming the file, record or field."""


class CyberslmError(Exception):
    """Raised for bad input or configuration; the CLI prints it as one line and exits 2."""


class BadRecord(CyberslmError):
    """A malformed record inside an otherwise readable file."""

    def __init__(self, path, record: str | int | None, message: str):
        self.path = str(path)
        self.record = record
        where = f"{self.path}" + (f": record {record}" if record is not None else "")
        super().__init__(f"{where}: {message}")
