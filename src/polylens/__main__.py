from polylens.cli import main

main()
