"""The Qt front end: widgets only. torch is never imported at module level anywhere in this package."""
