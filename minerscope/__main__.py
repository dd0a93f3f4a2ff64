"""``python -m minerscope`` is the same as the ``minerscope`` console script."""

from minerscope.cli import main

if __name__ == "__main__":
    main()
