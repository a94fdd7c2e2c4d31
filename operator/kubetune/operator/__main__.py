import sys

from kubetune.operator.main import main

sys.exit(main())
