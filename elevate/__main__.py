from elevate.cli import main

raise SystemExit(main())
