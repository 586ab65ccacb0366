"""Fixed word lists the generator draws from (changing them changes the generated data).

They mix plain ASCII with the text a real multilingual site holds: accents, CJK, Arabic,
Cyrillic, Greek, 4-byte UTF-8 (emoji), quotes, backslashes and HTML.
"""

from __future__ import annotations

# fmt: off
FIRST_NAMES = [
    "Anna", "José", "Zoë", "Łukasz", "Mohammed", "محمد", "Иван", "Ольга", "美咲", "太郎",
    "Søren", "François", "Ngozi", "Priya", "Chloé", "Björn", "Αλέξανδρος", "Mary-Jane",
    "Anna-Lena 😀", "John", "Emma", "Liam", "Olivia", "Noah", "Ava", "Lucas", "Mia", "Jan",
    "Fatima", "Yusuf", "Ingrid", "Siobhán", "Dvořák", "Nguyễn Văn", "Aiyana", "Kofi",
]
LAST_NAMES = [
    "Smith", "Müller", "D'Angelo", "O'Brien", "García", "Nguyễn", "王", "김", "Иванова",
    "عبد الله", "Kowalski", "Núñez", "Østergaard", "van der Berg", "Jones 🎓", "Brown",
    "Williams", "Taylor", "Wilson", "Martin", "Lefèvre", "Schröder", "Popescu", "Yılmaz",  # noqa: RUF001
    "Back\\slash", 'Quote"d', "Tab\tName", "Hernández", "Papadopoulos", "Sato", "Kim",
]
ASCII_FIRST = ["anna", "jose", "zoe", "lukasz", "mo", "ivan", "olga", "misaki", "taro",
               "soren", "francois", "ngozi", "priya", "chloe", "bjorn", "alex", "john", "emma",
               "liam", "olivia", "noah", "ava", "lucas", "mia", "jan", "fatima", "yusuf"]
ASCII_LAST = ["smith", "mueller", "dangelo", "obrien", "garcia", "nguyen", "wang", "kim",
              "ivanova", "abdullah", "kowalski", "nunez", "ostergaard", "berg", "jones",
              "brown", "williams", "taylor", "wilson", "martin", "lefevre", "popescu"]
DOMAINS = ["example.com", "example.org", "student.example.edu", "staff.example.edu",
           "mail.example.net"]
CITIES = ["Berlin", "São Paulo", "Zürich", "Kraków", "北京", "東京", "القاهرة", "Москва",
          "Αθήνα", "Reykjavík", "Montréal", "Ciudad de México", "Cape Town", "Perth",
          "New York", "Dublin", "Genève", "İstanbul", "Hà Nội", "Vancouver"]
COUNTRIES = ["DE", "BR", "CH", "PL", "CN", "JP", "EG", "RU", "GR", "IS", "CA", "MX", "ZA",
             "AU", "US", "IE", "FR", "TR", "VN", "GB", "ES", "IT", "NL", "IN", ""]
LANGS = ["en", "en", "en", "de", "fr", "es", "pt_br", "zh_cn", "ja", "ar", "ru", "el"]
TIMEZONES = ["99", "99", "Europe/Berlin", "America/Sao_Paulo", "Asia/Tokyo", "Africa/Cairo",
             "Europe/Moscow", "Australia/Perth", "America/New_York", "UTC"]
INSTITUTIONS = ["Universität Wien", "École Polytechnique", "Example University",
                "北京大学", "Open College", "St. Mary's School", "Instituto \"Tecnológico\"",
                "Школа №57", ""]
DEPARTMENTS = ["Mathematics", "Physics", "Computer Science", "Languages", "History",
               "Biology", "Economics", "Art & Design", "Music", ""]

WORDS = [
    "the", "course", "quiz", "assignment", "student", "grade", "forum", "week", "lesson",
    "résumé", "naïve", "café", "Übung", "Prüfung", "课程", "作业", "اختبار", "درس", "урок",
    "задание", "θέμα", "😀", "🎉", "👍🏽", "📚", "“smart quotes”", "it's", "C:\\Users\\file",
    "50%", "<b>bold</b>", "&amp;", "and", "of", "to", "in", "for", "with", "on", "is",
    "learning", "answer", "question", "submit", "draft", "feedback", "please", "read",
    "chapter", "deadline", "exam", "notes", "project", "group", "teacher", "thanks", "see",
    "attached", "file", "today", "tomorrow", "Friday", "résultat", "über", "niño", "façade",
    'say "hi"', "O'Reilly", "a\\b", "x^2+y^2", "∑", "√2", "€10", "¿qué?", "¡sí!", "日本語",
]
SENTENCE_ENDS = [".", ".", ".", "!", "?", "…", " :-)", ".\r\n", ".\n", ".\t"]

COURSE_TOPICS = ["Introduction to Programming", "Mathématiques appliquées", "数学分析",
                 "Физика", "Biology 🧬", "Economía", "Deutsch für Anfänger", "History of Art",
                 "Machine Learning", "Statistics", "علوم الحاسوب", "Creative Writing",
                 "Chemistry", "Philosophy", "Music Theory ♪", "Ελληνικά", "Law & Ethics"]
COURSE_FORMATS = ["topics", "topics", "topics", "weeks", "weeks", "singleactivity", "social"]

MODULES = ["assign", "bigbluebuttonbn", "book", "chat", "choice", "data", "feedback",
           "folder", "forum", "glossary", "h5pactivity", "imscp", "label", "lesson", "lti",
           "page", "quiz", "resource", "scorm", "survey", "url", "wiki", "workshop"]

# (eventname, component, action, target, objecttable, crud, edulevel, contextlevel)
EVENTS = [
    ("\\core\\event\\course_viewed", "core", "viewed", "course", "", "r", 2, 50),
    ("\\core\\event\\user_loggedin", "core", "loggedin", "user", "user", "r", 0, 10),
    ("\\core\\event\\dashboard_viewed", "core", "viewed", "dashboard", "", "r", 0, 30),
    ("\\mod_quiz\\event\\attempt_started", "mod_quiz", "started", "attempt", "quiz_attempts",
     "c", 2, 70),
    ("\\mod_quiz\\event\\attempt_submitted", "mod_quiz", "submitted", "attempt",
     "quiz_attempts", "u", 2, 70),
    ("\\mod_quiz\\event\\course_module_viewed", "mod_quiz", "viewed", "course_module", "quiz",
     "r", 2, 70),
    ("\\mod_forum\\event\\discussion_viewed", "mod_forum", "viewed", "discussion",
     "forum_discussions", "r", 2, 70),
    ("\\mod_forum\\event\\post_created", "mod_forum", "created", "post", "forum_posts", "c",
     2, 70),
    ("\\mod_assign\\event\\submission_status_viewed", "mod_assign", "viewed",
     "submission_status", "", "r", 2, 70),
    ("\\assignsubmission_file\\event\\assessable_uploaded", "assignsubmission_file",
     "uploaded", "assessable", "assign_submission", "c", 2, 70),
    ("\\mod_resource\\event\\course_module_viewed", "mod_resource", "viewed",
     "course_module", "resource", "r", 2, 70),
    ("\\core\\event\\grade_item_updated", "core", "updated", "grade_item", "grade_items",
     "u", 0, 50),
    ("\\gradereport_user\\event\\grade_report_viewed", "gradereport_user", "viewed",
     "grade_report", "", "r", 2, 50),
    ("\\core\\event\\user_enrolment_created", "core", "created", "user_enrolment",
     "user_enrolments", "c", 0, 50),
    ("\\core\\event\\message_sent", "core", "sent", "message", "messages", "c", 0, 10),
    ("\\core\\event\\course_module_completion_updated", "core", "updated",
     "course_module_completion", "course_modules_completion", "u", 0, 70),
    ("\\mod_page\\event\\course_module_viewed", "mod_page", "viewed", "course_module",
     "page", "r", 2, 70),
    ("\\core\\event\\user_profile_viewed", "core", "viewed", "user_profile", "user", "r", 0,
     30),
]

FILE_COMPONENTS = [("user", "draft"), ("mod_resource", "content"), ("mod_assign", "intro"),
                   ("assignsubmission_file", "submission_files"), ("mod_forum", "attachment"),
                   ("mod_forum", "post"), ("question", "questiontext"), ("course", "overviewfiles"),
                   ("backup", "automated"), ("mod_folder", "content"), ("user", "icon"),
                   ("mod_page", "content")]
FILE_NAMES = ["Übung 1", "課題レポート", "lecture notes", "O'Reilly chapter", "émission",
              "syllabus 2023-24", "photo 📷", "Лекция 3", "المحاضرة", "final (1)",
              "report \"draft\"", "data_set", "backup-moodle2-course", "thumb", "f1"]
FILE_EXTS = [("pdf", "application/pdf"), ("docx", "application/vnd.openxmlformats-"
             "officedocument.wordprocessingml.document"), ("png", "image/png"),
             ("jpg", "image/jpeg"), ("txt", "text/plain"), ("mbz", "application/vnd.moodle.backup"),
             ("zip", "application/zip"), ("mp4", "video/mp4"), ("h5p", "application/zip.h5p")]
LICENSES = ["unknown", "allrightsreserved", "cc-4.0", "cc-nc-4.0", "public", "cc-sa-4.0"]

QA_NAMES = ["answer", "-submit", "_order", "-finish", "sub0", "-comment", "-mark", "-maxmark",
            "_separators", "choice0", "_variant", "-tryagain"]

PLUGINS = [
    "mod_assign", "mod_book", "mod_chat", "mod_choice", "mod_data", "mod_feedback",
    "mod_folder", "mod_forum", "mod_glossary", "mod_h5pactivity", "mod_imscp", "mod_label",
    "mod_lesson", "mod_lti", "mod_page", "mod_quiz", "mod_resource", "mod_scorm",
    "mod_survey", "mod_url", "mod_wiki", "mod_workshop", "mod_bigbluebuttonbn",
    "qtype_multichoice", "qtype_truefalse", "qtype_shortanswer", "qtype_essay",
    "qtype_numerical", "qtype_match", "qtype_ddwtos", "qtype_calculated", "qtype_gapselect",
    "qbehaviour_deferredfeedback", "qbehaviour_interactive", "qbehaviour_manualgraded",
    "block_html", "block_calendar_month", "block_timeline", "block_recentlyaccesseditems",
    "block_online_users", "block_myoverview", "block_navigation", "block_settings",
    "auth_manual", "auth_email", "auth_ldap", "auth_oauth2", "auth_nologin", "auth_db",
    "enrol_manual", "enrol_self", "enrol_guest", "enrol_cohort", "enrol_meta", "enrol_lti",
    "theme_boost", "theme_classic", "tool_log", "logstore_standard", "tool_mfa",
    "tool_dataprivacy", "tool_policy", "tool_recyclebin", "tool_monitor", "editor_tiny",
    "editor_atto", "filter_mathjaxloader", "filter_mediaplugin", "filter_multilang",
    "format_topics", "format_weeks", "report_log", "report_outline", "gradereport_grader",
    "gradereport_user", "gradeexport_ods", "repository_upload", "repository_recent",
    "message_popup", "message_email", "portfolio_download", "search_simpledb",
    "antivirus_clamav", "availability_date", "availability_grade", "media_videojs",
    "local_custom", "quiz_grading", "quiz_statistics", "assignsubmission_file",
    "assignsubmission_onlinetext", "assignfeedback_comments", "assignfeedback_editpdf",
]
SETTING_WORDS = ["enable", "default", "max", "min", "show", "allow", "notify", "timeout",
                 "display", "require", "cache", "use", "limit", "auto", "sort", "lock"]
SETTING_NOUNS = ["completion", "blogs", "webservices", "badges", "comments", "notes", "tags",
                 "outcomes", "rss", "stats", "grades", "attempts", "uploads", "groups",
                 "reminders", "messages", "password", "session", "format", "zoom"]
SETTING_VALUES = ["0", "1", "1", "", "50", "3600", "topics", "a:2:{i:0;s:3:\"foo\";i:1;s:4:\"b'ar\";}",
                  "/^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$/i", "{\"json\":true,\"list\":[1,2]}",
                  "C:\\Program Files\\Moodle", "line1\nline2", "tab\tseparated", "€ Ünïcödé ✓",
                  "<p>Welcome to our <strong>Moodle</strong> site!</p>", "100M", "2097152"]

# Real core settings, written first so the config table reads like a real site's.
CONFIG = [
    ("rolesactive", "1"), ("auth", "email"), ("enrol_plugins_enabled", "manual,guest,self,cohort"),
    ("theme", "boost"), ("filter_multilang_converted", "1"), ("siteidentifier",
     "8b1a9953c4611296a827abf8c47804d7moodle.example.edu"), ("backup_version", "2008111700"),
    ("backup_release", "2.0 dev"), ("mnet_dispatcher_mode", "off"), ("sessiontimeout", "28800"),
    ("stringfilters", ""), ("filterall", "0"), ("texteditors", "tiny,atto,tinymce,textarea"),
    ("antiviruses", ""), ("media_plugins_sortorder", "videojs,youtube"),
    ("upgrade_extracreditweightsstepignored", "1"), ("upgrade_calculatedgradeitemsignored", "1"),
    ("upgrade_letterboundarycourses", "1"), ("mnet_localhost_id", "1"),
    ("mnet_all_hosts_id", "2"), ("siteguest", "1"), ("siteadmins", "2"),
    ("themerev", "1700784000"), ("jsrev", "1700784000"), ("templaterev", "1700784000"),
    ("gdversion", "2"), ("licenses", "unknown,allrightsreserved,public,cc-4.0,cc-nc-4.0"),
    ("sitedefaultlicense", "unknown"), ("fullnamedisplay", "language"),
    ("supportemail", "support@example.edu"), ("noreplyaddress", "noreply@example.edu"),
    ("timezone", "Europe/London"), ("registerauth", ""), ("lang", "en"),
    ("defaultcity", "Zürich"), ("allowuserthemes", "0"), ("maxbytes", "0"),
    ("extendedusernamechars", "0"), ("passwordpolicy", "1"), ("minpasswordlength", "8"),
    ("minpassworddigits", "1"), ("minpasswordlower", "1"), ("minpasswordupper", "1"),
    ("minpasswordnonalphanum", "1"), ("cronclionly", "1"), ("forcelogin", "0"),
    ("frontpage", "6"), ("frontpageloggedin", "6"), ("navshowcategories", "1"),
    ("smtphosts", ""), ("smtpsecure", ""), ("emailheaders", "X-Course-Id: {{course.id}}\r\nX-Foo: 'bar'"),
    ("customusermenuitems", "profile,moodle|/user/profile.php\r\ngrades,grades|/grade/report/mygrades.php"),
    ("allowedemaildomains", "example.edu\nexample.org"), ("localcachedir", "/var/cache/moodle"),
    ("pathtophp", "/usr/bin/php"), ("pathtodu", "/usr/bin/du"), ("aspellpath", ""),
    ("pathtodot", ""), ("pathtogs", "/usr/bin/gs"), ("pathtopython", ""),
]
# fmt: on
