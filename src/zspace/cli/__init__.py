"""The command line: the parser and its commands, the generative commands, the demo and the progress bars."""
