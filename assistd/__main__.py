from assistd.cli import main

main(prog_name="assistd")
